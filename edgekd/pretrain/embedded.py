"""edgekd's built-in teachers for a dataset, each built on first use and cached: "vl", "invariant", "distinctive".

No pretrained video weights can be fetched, so the demo and the tests need teachers edgekd can make
itself, quickly, on a CPU:

    vl           the embedded vision-language teacher (edgekd.teachers.embedded_vl, trained by
                 edgekd.pretrain.vl: a small video tower aligned to the frozen MiniLM sentence encoder on the videos' captions, or,
                 for datasets without captions, on class-name prompts of the labeled videos)
    invariant    the TimeBalance temporally-invariant teacher (L_I, Eq. 1, on unlabeled videos)
    distinctive  the TimeBalance temporally-distinctive teacher (L_D = L_D1 + L_D2)

each then fine-tuned on the labeled split (edgekd.pretrain.finetune). Only the teachers a recipe
asks for are built. The networks are small and the schedules short (EmbeddedConfig), so a build
takes minutes on 2 CPU cores; afterwards the folders are reused. Building is a step of its own:
`edgekd distill` and the `edgekd teacher` commands call `default_teachers` for the names they need;
`load_teacher` (edgekd.teachers.loading) never trains one. Like the vision-language tower,
the SSL backbones see temporal gradients (frame differences) rather than frames: in a CPU budget of
seconds per epoch, RGB contrastive pretraining learns the synthetic videos' random appearance and
not their motion (fine-tuned test top-1 at chance), while on frame differences the same objectives
learn motion features. This still holds with the authors' augmentation (docs/ablation.md, issue 14:
at 5% labels RGB teachers probe at 11.1% / 6.9%, below a random-init backbone's 16.7%; frame
differences 19.4% / 27.8%).

    $EDGEKD_HOME/teachers/<dataset>-<split>/<name>-<recipe>/   (fingerprints of data, split, recipe)
        pretrained/     teacher folder
        tuned/          fine-tuned on the labeled split
        build.json      timings, optimizer steps and test accuracy; written last, marks the teacher complete

Every teacher folder is built in a temporary folder and renamed into place. A lock file per teacher
serialises concurrent first uses; an interrupted build resumes from the folders it finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from edgekd.data.spec import DataSpec
from edgekd.errors import TeacherError
from edgekd.io import atomic_folder, write_json
from edgekd.pretrain.embedded_config import (BUILD_FILE, NAMES, EmbeddedConfig, resolve_split, split_fingerprint,
                                             teacher_folder)
from edgekd.pretrain.finetune import finetune_teacher
from edgekd.pretrain.ssl import pretrain_ssl
from edgekd.pretrain.vl import pretrain_vl
from edgekd.report import Reporter
from edgekd.teachers.loading import load_teacher


def default_teachers(manifest, split=None, data_spec: DataSpec | None = None, *, names=NAMES,
                     reporter: Reporter | None = None, config: EmbeddedConfig | None = None,
                     device: str = "cpu") -> dict[str, Any]:
    """The embedded teachers `names` for `manifest`, fine-tuned on the split's labeled videos.

    Each is built on first use (see the module docstring; on `device`), then loaded from $EDGEKD_HOME.
    `data_spec` is the run's input (the teachers resize and re-normalize its batches); None = the
    dataset's default.
    """
    from edgekd.data.manifest import default_data_spec

    unknown = [n for n in names if n not in NAMES]
    if unknown:
        from edgekd.registry import did_you_mean

        raise TeacherError(f"unknown embedded teacher {unknown[0]!r}", did_you_mean(unknown[0], list(NAMES)))
    config = (config or EmbeddedConfig()).for_dataset(manifest)
    split = resolve_split(manifest, split)
    reporter = reporter or Reporter.quiet()
    teachers = {}
    for name in names:
        folder = teacher_folder(name, manifest, split, config)
        if not (folder / BUILD_FILE).is_file():
            folder.parent.mkdir(parents=True, exist_ok=True)
            with _locked(folder.parent / f".{folder.name}.lock"):
                if not (folder / BUILD_FILE).is_file():      # another process may have finished meanwhile
                    build_teacher(name, manifest, split, folder, config, reporter, device)
        teachers[name] = load_teacher(folder / "tuned", data_spec or default_data_spec(manifest), probe=False)
    return teachers


def load_embedded(name: str, manifest, split=None, data_spec: DataSpec | None = None, **kwargs):
    """The teacher of an "embedded:<name>" spec."""
    return default_teachers(manifest, split, data_spec, names=(name,), **kwargs)[name]


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


def _step(folder: Path, make, reporter: Reporter, what: str) -> float:
    """Build `folder` with make(tmp_folder) unless it is already complete (resume after a crash); seconds taken."""
    if (folder / "teacher.json").is_file():
        reporter.print(f"  {what}: reusing {folder}")
        return 0.0
    reporter.print(f"  {what} ...")
    t0 = time.perf_counter()
    with atomic_folder(folder) as tmp:
        make(tmp)
    return round(time.perf_counter() - t0, 1)


def build_teacher(name: str, manifest, split, folder: Path, config: EmbeddedConfig, reporter: Reporter,
                  device: str = "cpu") -> dict:
    """Pretrain and fine-tune teacher `name` into `folder`; returns the build record (build.json)."""
    import torch

    from edgekd.data.manifest import default_data_spec

    spec = default_data_spec(manifest)
    labeled, _ = split.apply(manifest)
    test = manifest.split("test")
    quiet = not reporter.enabled
    how = f" from {config.vl_text}" if name == "vl" else ""
    reporter.print(f"[bold]building the embedded {name} teacher[/bold]{how} (first use, a few minutes) into {folder}")
    t_start = time.perf_counter()

    def pretrain(tmp: Path) -> None:
        if name == "vl":
            pretrain_vl(manifest, spec, tmp, text=config.vl_text, labeled=labeled, quiet=quiet, log=reporter.print,
                        net_size=config.net_size, seed=config.seed, device=device, **config.vl)
            return
        ssl_spec = dataclasses.replace(spec, size=min(config.net_size, spec.size), frame_stride=config.ssl_frame_stride)
        pretrain_ssl(name, manifest, split, ssl_spec, tmp, config.ssl_pretrain(), device=device, force=True,
                     progress=not quiet)

    def finetune(tmp: Path) -> None:
        tune = ({"mode": config.vl_finetune_mode} if name == "vl" else
                {"mode": config.ssl_finetune_mode, "epochs": config.ssl_finetune_epochs, "lr": config.ssl_finetune_lr})
        teacher = load_teacher(folder / "pretrained", spec, probe=False).to(device)
        finetune_teacher(teacher, labeled, spec, tmp, test=test, quiet=quiet, log=reporter.print, seed=config.seed,
                         **tune)

    seconds = {"pretrain": _step(folder / "pretrained", pretrain, reporter, f"{name}: pretrain"),
               "finetune": _step(folder / "tuned", finetune, reporter,
                                 f"{name}: fine-tune on {len(labeled)} labeled videos")}
    pretrained, tuned = (json.loads((folder / f / "teacher.json").read_text()).get("metrics", {})
                         for f in ("pretrained", "tuned"))
    record: dict[str, Any] = {
        "teacher": name, "test_top1": tuned.get("test", {}).get("top1"),
        "dataset": manifest.fingerprint(), "split": split_fingerprint(split),
        "labeled_videos": len(split.labeled), "unlabeled_videos": len(split.unlabeled),
        "test_videos": len(test.entries), "recipe": config.recipe(name),
        "seconds": seconds, "total_seconds": round(time.perf_counter() - t_start, 1),
        "steps": {"pretrain": pretrained.get("steps"), "finetune": tuned.get("steps")},  # optimizer steps
        "torch_threads": torch.get_num_threads(),
    }
    if name == "vl":
        record["zeroshot_top1"] = pretrained.get("zeroshot", {}).get("top1")
    write_json(folder / BUILD_FILE, record)                     # last: marks the teacher complete
    top1 = "n/a" if record["test_top1"] is None else f"{record['test_top1']:.1%}"
    steps = record["steps"]
    reporter.print(f"embedded {name} teacher ready in {record['total_seconds']:.0f} s: {steps['pretrain']} pretraining "
                   f"+ {steps['finetune']} fine-tuning steps (fine-tuned test top-1: {top1})")
    return record
