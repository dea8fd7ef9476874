"""edgekd's built-in teachers for a dataset, trained on first use and cached: "vl", "invariant", "distinctive".

No pretrained video weights can be fetched, so the demo and the tests need teachers edgekd can make
itself, quickly, on a CPU:

    vl           the embedded vision-language teacher (edgekd.teachers.embedded_vl: a small video
                 tower aligned to the frozen MiniLM sentence encoder on the videos' captions)
    invariant    the TimeBalance temporally-invariant teacher (L_I, Eq. 1, on unlabeled videos)
    distinctive  the TimeBalance temporally-distinctive teacher (L_D = L_D1 + L_D2)

each then fine-tuned on the labeled split (edgekd.teachers.finetune). The networks are small and the
schedules short (EmbeddedConfig), so the first build takes minutes on 2 CPU cores; afterwards the
folders are reused. Like the vision-language tower, the SSL backbones see temporal gradients (frame
differences) rather than frames: in a CPU budget of seconds per epoch, RGB contrastive pretraining
learns the synthetic videos' random appearance and not their motion (fine-tuned test top-1 at chance),
while on frame differences the same objectives learn motion features.

    $EDGEKD_HOME/teachers/<dataset>-<split>-<config>/     (three fingerprints)
        vl-pretrained/  invariant-pretrained/  distinctive-pretrained/    teacher folders
        vl/  invariant/  distinctive/                                      fine-tuned on the labeled split
        build.json                                                         timings and test accuracies

Every teacher folder is built in a temporary folder and renamed into place; build.json is written
last and marks the set complete. A lock file serialises concurrent first uses; an interrupted build
resumes from the folders it finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from edgekd.checkpoint import DataSpec
from edgekd.errors import TeacherError

NAMES = ("vl", "invariant", "distinctive")
VERSION = 1                        # bump when the recipe changes: older folders are not reused
DEFAULT_LABELED_FRACTION = 0.1     # the split used when none is given (distill's default too)
BUILD_FILE = "build.json"


@dataclasses.dataclass(frozen=True)
class EmbeddedConfig:
    """How the embedded teachers are trained: small networks, short schedules (minutes on a CPU)."""

    net_size: int = 32                          # the teachers' own clip size (batches are resized to it)
    vl: dict = dataclasses.field(default_factory=dict)  # overrides of embedded_vl.VLPretrainConfig
    vl_finetune_mode: str = "linear"            # its head starts as the zero-shot classifier
    ssl_backbone: str = "tiny3d"
    ssl_width: float = 0.5
    ssl_frames_in: str = "diff"                 # temporal gradients: appearance cancels, motion remains
    ssl_epochs: int = 10
    ssl_batch_size: int = 32                    # the negatives of L_I are the other videos of the batch
    ssl_clips: int = 4                          # n clips per video (TimeBalance uses 4)
    ssl_frame_stride: int = 1                   # n consecutive clips tile the video, as in the paper
    ssl_warmup_epochs: int = 1
    ssl_jitter: float = 0.8                     # strong colour augmentation: colour is no shortcut
    ssl_grayscale_p: float = 0.5
    ssl_finetune_mode: str = "linear"           # "full" overfits 2 labeled videos per class (measured)
    ssl_finetune_epochs: int = 0                # 0 = finetune's default for the mode
    ssl_finetune_lr: float = 0.0
    seed: int = 0

    def resolved(self) -> dict[str, Any]:
        """Everything that shapes the teachers, the vision-language recipe's defaults included."""
        from edgekd.teachers.embedded_vl import VLPretrainConfig

        vl = dataclasses.asdict(dataclasses.replace(VLPretrainConfig(), net_size=self.net_size, seed=self.seed,
                                                    **self.vl))
        for key in ("num_workers", "max_bank_mb"):           # how, not what: no effect on the teacher
            vl.pop(key, None)
        return {"version": VERSION, **dataclasses.asdict(self), "vl": vl}

    def key(self, spec: DataSpec) -> str:
        """Fingerprint of the recipe and the clips it trains on (the dataset's default DataSpec)."""
        blob = json.dumps({**self.resolved(), "spec": spec.to_dict()}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]


def resolve_split(manifest, split=None):
    """A SemiSplit: as given, loaded from a path, or the default seeded 10 % labeled split."""
    from edgekd.data.splits import SemiSplit, make_split

    if split is None:
        return make_split(manifest, labeled_fraction=DEFAULT_LABELED_FRACTION, seed=0)
    if isinstance(split, (str, Path)):
        return SemiSplit.load(split)
    return split


def split_fingerprint(split) -> str:
    blob = "\n".join(split.labeled) + "\n--\n" + "\n".join(split.unlabeled)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def teachers_folder(manifest, split, config: EmbeddedConfig | None = None) -> Path:
    """$EDGEKD_HOME/teachers/<dataset>-<split>-<config> for this dataset, split and recipe."""
    from edgekd.data.manifest import default_data_spec
    from edgekd.data.synthetic import edgekd_home

    config = config or EmbeddedConfig()
    split = resolve_split(manifest, split)
    key = config.key(default_data_spec(manifest))
    return edgekd_home() / "teachers" / f"{manifest.fingerprint()}-{split_fingerprint(split)}-{key}"


def default_teachers(manifest, split=None, data_spec: DataSpec | None = None, *, progress: bool = True,
                     config: EmbeddedConfig | None = None) -> dict[str, Any]:
    """{"vl", "invariant", "distinctive"} teachers for `manifest`, fine-tuned on the split's labeled videos.

    Built on first use (see the module docstring), then loaded from $EDGEKD_HOME. `data_spec` is the
    run's input (the teachers resize and re-normalize its batches); None = the dataset's default.
    """
    from edgekd.data.manifest import default_data_spec
    from edgekd.teachers.loading import load_teacher

    config = config or EmbeddedConfig()
    split = resolve_split(manifest, split)
    folder = teachers_folder(manifest, split, config)
    if not (folder / BUILD_FILE).is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with _locked(folder.parent / f".{folder.name}.lock"):
            if not (folder / BUILD_FILE).is_file():          # another process may have finished meanwhile
                build_teachers(manifest, split, folder, config, progress=progress)
    spec = data_spec or default_data_spec(manifest)
    return {name: load_teacher(folder / name, spec, probe=False) for name in NAMES}


def load_embedded(name: str, manifest, split=None, data_spec: DataSpec | None = None, **kwargs):
    """The teacher of an "embedded:<name>" spec."""
    if name not in NAMES:
        from edgekd.registry import did_you_mean

        raise TeacherError(f"unknown embedded teacher {name!r}", did_you_mean(name, list(NAMES)))
    return default_teachers(manifest, split, data_spec, **kwargs)[name]


# -- building ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock file (POSIX flock); elsewhere no lock, the per-folder renames stay safe."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _step(folder: Path, make, log, what: str, seconds: dict[str, float], key: str) -> Path:
    """Build `folder` with make(tmp_folder) unless it is already complete (resume after a crash)."""
    from edgekd.teachers.timebalance import atomic_folder

    if (folder / "teacher.json").is_file():
        log(f"  {what}: reusing {folder.name}/")
        return folder
    log(f"  {what} ...")
    t0 = time.perf_counter()
    with atomic_folder(folder) as tmp:
        make(tmp)
    seconds[key] = round(time.perf_counter() - t0, 1)
    return folder


def build_teachers(manifest, split, folder: Path, config: EmbeddedConfig, *, progress: bool = True) -> dict:
    """Pretrain and fine-tune the three teachers into `folder`; returns the build record (build.json)."""
    import torch

    from edgekd.data.manifest import default_data_spec
    from edgekd.io import write_json
    from edgekd.teachers.embedded_vl import pretrain_vl
    from edgekd.teachers.finetune import finetune_teacher
    from edgekd.teachers.loading import load_teacher
    from edgekd.teachers.timebalance import pretrain_ssl

    from edgekd.report import make_console

    err = make_console(stderr=True)  # teachers sit below the CLI: they make their own stderr console

    def log(text: str) -> None:
        if progress:
            err.print(text, highlight=False)

    spec = default_data_spec(manifest)
    ssl_spec = dataclasses.replace(spec, size=min(config.net_size, spec.size), frame_stride=config.ssl_frame_stride)
    labeled, _ = split.apply(manifest)
    test = manifest.split("test")
    log(f"[bold]building the embedded teachers[/bold] (first use, a few minutes) into {folder}")
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    quiet = not progress

    def vl(tmp: Path) -> None:
        pretrain_vl(manifest, spec, tmp, quiet=quiet, log=log, net_size=config.net_size, seed=config.seed,
                    **config.vl)

    def ssl(objective: str):
        def make(tmp: Path) -> None:
            pretrain_ssl(objective, manifest, split, ssl_spec, tmp, backbone=config.ssl_backbone,
                         backbone_kwargs={"width": config.ssl_width}, epochs=config.ssl_epochs,
                         batch_size=config.ssl_batch_size, clips=config.ssl_clips,
                         warmup_epochs=config.ssl_warmup_epochs, frames_in=config.ssl_frames_in,
                         jitter=config.ssl_jitter,
                         grayscale_p=config.ssl_grayscale_p, seed=config.seed, force=True, progress=progress)
        return make

    def finetune(base: Path, name: str):
        tune = ({"mode": config.vl_finetune_mode} if name == "vl" else
                {"mode": config.ssl_finetune_mode, "epochs": config.ssl_finetune_epochs, "lr": config.ssl_finetune_lr})

        def make(tmp: Path) -> None:
            teacher = load_teacher(base, spec, probe=False)
            finetune_teacher(teacher, labeled, spec, tmp, test=test, quiet=quiet, log=log, seed=config.seed, **tune)
        return make

    makers = {"vl": vl, "invariant": ssl("invariant"), "distinctive": ssl("distinctive")}
    record: dict[str, Any] = {"test_top1": {}}
    for name in NAMES:
        base = _step(folder / f"{name}-pretrained", makers[name], log, f"{name}: pretrain", seconds,
                     f"{name}_pretrain")
        tuned = _step(folder / name, finetune(base, name), log, f"{name}: fine-tune on {len(labeled)} labeled videos",
                      seconds, f"{name}_finetune")
        metrics = json.loads((tuned / "teacher.json").read_text()).get("metrics", {})
        record["test_top1"][name] = metrics.get("test", {}).get("top1")
        if name == "vl":
            vl_metrics = json.loads((base / "teacher.json").read_text()).get("metrics", {})
            record["vl_zeroshot_top1"] = vl_metrics.get("zeroshot", {}).get("top1")

    record.update({
        "version": VERSION, "dataset": manifest.fingerprint(), "split": split_fingerprint(split),
        "labeled_videos": len(split.labeled), "unlabeled_videos": len(split.unlabeled),
        "test_videos": len(test.entries), "config": config.resolved(),
        "seconds": seconds, "total_seconds": round(time.perf_counter() - t_start, 1),
        "torch_threads": torch.get_num_threads(),
    })
    write_json(folder / BUILD_FILE, record)                     # last: marks the set complete
    top1 = ", ".join(f"{k} {v:.1%}" for k, v in record["test_top1"].items() if v is not None)
    log(f"embedded teachers ready in {record['total_seconds']:.0f} s (fine-tuned test top-1: {top1 or 'n/a'})")
    return record
