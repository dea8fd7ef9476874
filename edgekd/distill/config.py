"""`DistillConfig`: every knob of a distillation run as typed dataclasses with defaults.

Resolution order (edgekd.config.resolve): these defaults <- a TOML file (`--config`) <- CLI flags
(`--recipe`, `--student`, ...) <- `--set key=value`. An unknown key fails with "did you mean".
The resolved config is written to runs/NAME/config.toml and stored in every checkpoint, so a run
folder alone says exactly how it was trained.

Batch sizes are GLOBAL (summed over DDP processes): the same config gives the same optimization on
one process or on N (`torchrun --nproc-per-node N`), up to float summation order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.config import dumps_toml, merge, resolve, to_dict
from edgekd.errors import ConfigError

NO_TEACHER = ("", "none")  # teacher specs that mean "no teacher for this role"


@dataclass
class DataConfig:
    path: str | None = None  # dataset (folder, split files, CSV, manifest.json); None = synthetic default
    video_root: str | None = None  # folder of the class folders of UCF101/HMDB51 split files; None = found beside them
    labeled: float | None = 0.1  # fraction of train videos whose labels are used, in (0, 1]
    labeled_per_class: int | None = None  # when set, replaces `labeled`: this many labeled videos per class
    split_file: str | None = None  # a saved SemiSplit (json); overrides labeled/labeled_per_class
    split_seed: int = 0
    # Clip shape and normalization; None = the dataset's own default (edgekd.data.manifest.
    # default_data_spec: the synthetic set stores 8 frames x 64 px, stride 2; others 16 x 112, stride 2).
    frames: int | None = None
    size: int | None = None
    frame_stride: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    # Random clip start, resized crop, colour jitter on training clips (False: centre clips).
    # None = on, except for the embedded synthetic dataset, whose shapes are a few pixels wide: a
    # random crop or colour jitter there destroys the label (measured with tiny3d at 10% labels,
    # 12 epochs: supervised 2.8% top-1 with augmentation, 19.4% without).
    augment: bool | None = None
    backend: str = "auto"  # video decoder: auto | decord | pyav
    workers: int = 2  # DataLoader worker processes per training process
    eval_clips: int = 10  # multi-view protocol of `edgekd eval`: K temporal clips ...
    eval_crops: int = 3  # ... x this many spatial crops, predictions averaged (TimeBalance Sec. 4.2)


@dataclass
class StudentConfig:
    name: str = "tiny3d"  # a name from edgekd.students.STUDENTS
    # Family options, passed to build_student only when set (not every family has every one).
    width: float | None = None  # channel multiplier (tiny3d, mobilenet_*_tsm)
    depth: int | None = None  # blocks per stage (tiny3d, r3d_18 family)
    dropout: float | None = None  # before the classifier
    # mobilenet_*_tsm: "offline" (bidirectional, the default) or "online" (past frames only: the
    # student then also runs frame by frame - `edgekd export --streaming`, `edgekd stream`)
    shift: str | None = None
    # Backbone weights to start from: a folder written by `edgekd pretrain` / `edgekd teacher pretrain`
    # (edgekd.distill.student_init); None = random init. The classifier always starts fresh.
    init: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {k: v for k, v in (("width", self.width), ("depth", self.depth), ("dropout", self.dropout),
                                  ("shift", self.shift)) if v is not None}


@dataclass
class TeacherConfig:
    # A spec is an edgekd/teacher checkpoint path, an open_clip/HF CLIP dir, "embedded:vl",
    # "embedded:invariant", "embedded:distinctive", or "none".
    vl: str = "embedded:vl"  # feature / pseudo recipes (VL paper)
    kd: str = "embedded:vl"  # kd recipe: any architecture with a classifier head (Camarena)
    invariant: str = "embedded:invariant"  # timebalance f_I
    distinctive: str = "embedded:distinctive"  # timebalance f_D
    cache: str | None = None  # folder of a TeacherCache with precomputed teacher outputs
    # The embedded VL teacher learns from the videos' captions, or without them from class-name
    # prompts of the labeled videos (auto: captions when the dataset has them).
    vl_text: str = "auto"  # auto | captions | prompts
    templates: list[str] = field(default_factory=lambda: ["a video of {}."])  # prompts; {} = class name


@dataclass
class FeatureLoss:
    weight: float = 1.0  # on VL Eq. 1
    projector: str = "linear"  # linear: student width -> teacher width; none: widths must match
    normalize: bool = True  # compare unit-length embeddings (2 - 2 cos); False: raw MSE as printed in Eq. 1


@dataclass
class PseudoLoss:
    weight: float = 1.0  # on VL Eq. 3
    threshold: float = 0.2  # teacher softmax confidence needed (VL Sec. 4.3: 0.2 UCF101, 0.4 HMDB51)


@dataclass
class KDLoss:
    weight: float = 1.0  # on the T^2-scaled KL term (Hinton; Camarena Sec. 3)
    temperature: float = 4.0


@dataclass
class TimeBalanceLoss:
    # w of TB Eq. 2 / Alg. 1 line 24 on the unlabeled clips' L2 (Eq. 8, an MSE over classes). The
    # paper gives no value; the authors' code uses 100 on unlabeled and 50 on labeled clips.
    weight: float = 100.0
    labeled_weight: float | None = None  # w on labeled clips' L2; None = weight / 2 (authors' code)
    clips: int = 4  # n clips per video for the temporal similarity score (Eqs. 5-6; Sec. 4.4: n = 4)
    # "authors": wired as the authors' released code runs it: s once per video from n back-to-back
    # centre clips before training (kept for every epoch), no clamp on s, the student run separately on
    # labeled and unlabeled clips, the embedded teachers pretrained with their clips, losses and
    # augmentation. "paper": s from the step's training clips, clamped to [0, 1], one student pass over
    # [labeled | unlabeled], teachers with the equations read literally. docs/recipes.md has the list.
    fidelity: str = "authors"


@dataclass
class RecipeConfig:
    # auto: feature+pseudo (the VL paper's method; best on the synthetic set at 5% and 10%, docs/ablation.md)
    # when the data has captions or a VL teacher is given by path, else timebalance (recipes.choose_recipe)
    name: str = "auto"
    stage1_epochs: int | None = None  # two-stage recipes: feature-distillation epochs (None = half)
    feature: FeatureLoss = field(default_factory=FeatureLoss)
    pseudo: PseudoLoss = field(default_factory=PseudoLoss)
    kd: KDLoss = field(default_factory=KDLoss)
    timebalance: TimeBalanceLoss = field(default_factory=TimeBalanceLoss)


@dataclass
class OptimConfig:
    name: str = "adamw"  # adamw | adam
    lr: float = 2e-3
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_epochs: float = 1.0  # linear warm-up from 0 (TimeBalance Supp. B.2 uses 10)
    schedule: str = "cosine"  # cosine | plateau (halve on a loss plateau, TimeBalance) | constant
    min_lr_ratio: float = 0.01  # cosine ends at lr * min_lr_ratio
    plateau_patience: int = 2  # epochs without a lower train loss before halving
    plateau_factor: float = 0.5
    grad_clip: float = 1.0  # max global grad norm; 0 disables


@dataclass
class TrainConfig:
    epochs: int = 15
    batch_size: int = 8  # labeled clips per optimizer step (global, over all processes)
    unlabeled_batch_size: int = 16  # unlabeled clips per optimizer step (global)
    eval_batch_size: int = 16
    accum_steps: int = 1  # split each step's batches into this many micro-batches
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    channels_last: bool = True  # channels_last_3d memory format for 3D-conv students (CPU and CUDA)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0
    eval_every: int = 1  # evaluate top-1 on the test split every N epochs (and after the last)


@dataclass
class RunConfig:
    dir: str = "runs"  # parent folder of run folders
    name: str | None = None  # None: RECIPE-STUDENT-LABELS, suffixed -2, -3 ... when taken
    baseline: bool = True  # also train the supervised baseline on the same labels and compare
    tensorboard: bool = False  # write TensorBoard events to runs/NAME/tb (needs `tensorboard`)
    progress: bool = True  # rich progress bar


@dataclass
class DistillConfig:
    data: DataConfig = field(default_factory=DataConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "checkpoint config") -> "DistillConfig":
        return merge(cls(), d, where=where)

    def replace(self, **sections: Any) -> "DistillConfig":
        return dataclasses.replace(self, **sections)


ROLES = ("vl", "kd", "invariant", "distinctive")  # the teacher roles of [teacher]
FLAG_KEYS = {"recipe": "recipe.name", "student": "student.name", "data": "data.path",
             "video_root": "data.video_root", "labeled": "data.labeled",
             "epochs": "train.epochs", "name": "run.name", "device": "train.device", "workers": "data.workers",
             "baseline": "run.baseline", "tensorboard": "run.tensorboard", "seed": "train.seed"}


def flag_overrides(teachers: list[str] | None = None, **flags) -> list[str]:
    """CLI shorthand flags as `key=value` overrides (None = not given).

    teachers: `ROLE=SPEC` items of --teacher (vl=models/xclip, invariant=runs/teachers/inv, ...).
    """
    sets = [f"{FLAG_KEYS[k]}={v}" for k, v in flags.items() if v is not None]
    for item in teachers or []:
        role, sep, spec = item.partition("=")
        if not sep or role.strip() not in ROLES or not spec.strip():
            raise ConfigError(f"--teacher {item!r} is not ROLE=PATH", "roles: " + ", ".join(ROLES) +
                              "; e.g. --teacher vl=models/xclip-base")
        sets.append(f"teacher.{role.strip()}={spec.strip()}")
    return sets


def with_templates(cfg: DistillConfig, templates: list[str] | None) -> DistillConfig:
    """cfg with --template prompts (set directly: a prompt may hold the comma that separates list overrides)."""
    if not templates:
        return cfg
    from edgekd.teachers.text import check_templates

    return dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, templates=list(check_templates(templates))))


def load_config(toml_path: str | Path | None = None, overrides: list[str] | None = None) -> DistillConfig:
    """Defaults <- TOML <- `key=value` overrides, then validated."""
    cfg = resolve(DistillConfig(), toml_path, overrides)
    validate(cfg)
    return cfg


def _fail(key: str, msg: str, hint: str) -> None:
    raise ConfigError(f"{key}: {msg}", hint)


def validate(cfg: DistillConfig) -> None:
    """Reject impossible values before any data is read or model built."""
    from edgekd.distill.recipes import AUTO, RECIPES
    from edgekd.students import STUDENTS

    STUDENTS.get(cfg.student.name)  # unknown student -> did-you-mean, before any teacher is built
    d, t, o, r = cfg.data, cfg.train, cfg.optim, cfg.recipe
    if r.name != AUTO and RECIPES.get(r.name).two_stage and r.stage1_epochs is None and t.epochs < 2:
        _fail("train.epochs", f"recipe {r.name} trains in two stages and needs 2 epochs or more, got {t.epochs} "
                              "(one epoch would leave its classifier untrained)",
              "pass --epochs 2 or more (stage 1 takes half), or a one-stage recipe such as kd or supervised")
    if d.split_file is None:
        if d.labeled is None and d.labeled_per_class is None:
            _fail("data.labeled", "no labels requested", "pass --labeled 0.1 (a fraction in (0, 1])")
        if d.labeled_per_class is None and not 0.0 < d.labeled <= 1.0:
            _fail("data.labeled", f"labeled fraction {d.labeled} is out of range (0, 1]",
                  "pass a fraction such as 0.05 for 5% of the train videos")
        if d.labeled_per_class is not None and d.labeled_per_class < 1:
            _fail("data.labeled_per_class", f"must be >= 1, got {d.labeled_per_class}", "pass e.g. 2")
    for key, v in (("data.frames", d.frames), ("data.size", d.size)):
        if v is not None and v < 1:
            _fail(key, f"must be >= 1, got {v}", "use the student's clip length / size, e.g. 8 / 112")
    if (d.mean is not None and len(d.mean) != 3) or (d.std is not None and (len(d.std) != 3 or min(d.std) <= 0)):
        _fail("data.mean/std", "need three values each, std > 0", "e.g. --set data.std=0.23,0.22,0.22")
    if d.eval_clips < 1 or d.eval_crops not in (1, 3):
        _fail("data.eval_crops", "eval_clips must be >= 1 and eval_crops 1 or 3", "use 10 clips x 3 crops")
    for key, v in (("train.epochs", t.epochs), ("train.batch_size", t.batch_size),
                   ("train.unlabeled_batch_size", t.unlabeled_batch_size),
                   ("train.eval_batch_size", t.eval_batch_size), ("train.accum_steps", t.accum_steps),
                   ("train.eval_every", t.eval_every), ("data.frame_stride", d.frame_stride or 1)):
        if v < 1:
            _fail(key, f"must be >= 1, got {v}", f"set {key} to a positive integer")
    if o.name not in ("adam", "adamw"):
        _fail("optim.name", f"unknown optimizer {o.name!r}", "choose adamw or adam")
    if o.schedule not in ("cosine", "plateau", "constant"):
        _fail("optim.schedule", f"unknown schedule {o.schedule!r}", "choose cosine, plateau or constant")
    if o.lr <= 0 or o.weight_decay < 0 or o.warmup_epochs < 0 or o.grad_clip < 0:
        _fail("optim", "lr must be > 0; weight_decay, warmup_epochs, grad_clip >= 0", "fix the [optim] values")
    if len(o.betas) != 2:
        _fail("optim.betas", f"need two values, got {o.betas}", "e.g. optim.betas=0.9,0.999")
    if not 0.0 <= r.pseudo.threshold <= 1.0:
        _fail("recipe.pseudo.threshold", f"{r.pseudo.threshold} is not a probability",
              "use a softmax confidence in [0, 1], e.g. 0.2 (UCF101) or 0.4 (HMDB51)")
    if r.kd.temperature <= 0:
        _fail("recipe.kd.temperature", f"must be > 0, got {r.kd.temperature}", "Hinton KD uses T in 1..20, e.g. 4")
    from edgekd.teachers.timebalance import FIDELITIES

    if r.timebalance.fidelity not in FIDELITIES:
        from edgekd.registry import did_you_mean
        _fail("recipe.timebalance.fidelity", f"unknown value {r.timebalance.fidelity!r}",
              did_you_mean(r.timebalance.fidelity, list(FIDELITIES)))
    if r.timebalance.clips < 2:
        _fail("recipe.timebalance.clips", f"Eq. 6 needs n >= 2 clips per video, got {r.timebalance.clips}",
              "use 2 or more (the paper uses n = 4)")
    if r.feature.projector not in ("linear", "none"):
        _fail("recipe.feature.projector", f"unknown projector {r.feature.projector!r}", "choose linear or none")
    if r.stage1_epochs is not None and not 0 < r.stage1_epochs < t.epochs:
        _fail("recipe.stage1_epochs", f"{r.stage1_epochs} must lie in 1..epochs-1 ({t.epochs - 1})",
              "leave it unset for half of the epochs")
    for key, v in (("recipe.feature.weight", r.feature.weight), ("recipe.pseudo.weight", r.pseudo.weight),
                   ("recipe.kd.weight", r.kd.weight), ("recipe.timebalance.weight", r.timebalance.weight),
                   ("recipe.timebalance.labeled_weight", r.timebalance.labeled_weight or 0.0)):
        if v < 0:
            _fail(key, f"must be >= 0, got {v}", "loss weights are non-negative")


def default_run_name(cfg: DistillConfig) -> str:
    d = cfg.data
    if d.split_file:
        labels = Path(d.split_file).stem
    elif d.labeled_per_class is not None:
        labels = f"{d.labeled_per_class}pc"
    else:
        labels = f"{d.labeled * 100:g}pct"
    return f"{cfg.recipe.name.replace('+', '-')}-{cfg.student.name}-{labels}"


# Keys a resumed run may change: where/how it runs, how long, how it logs. Anything else would make
# the continuation a different experiment, so it is refused.
RESUMABLE = ("train.epochs", "train.device", "train.eval_every", "train.eval_batch_size", "data.workers",
             "data.backend", "data.eval_clips", "data.eval_crops", "run.progress", "run.tensorboard",
             "run.baseline", "teacher.")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def resolve_run(run: str | Path, runs_dir: str = "runs") -> Path:
    """A run folder given as a path or as a name under runs/."""
    p = Path(run)
    if not p.exists() and not p.is_absolute() and (Path(runs_dir) / p).exists():
        p = Path(runs_dir) / p
    return p


def resume_config(run: str | Path, overrides: list[str] | None = None) -> tuple[DistillConfig, Path]:
    """The config a run was trained with, plus the overrides a continuation may change.

    Returns (config, run folder). Changing the student, recipe, data, split, batch sizes, seed or
    optimizer of a run on resume is refused with a ConfigError naming the keys.
    """
    from edgekd.checkpoint import load_checkpoint
    from edgekd.config import parse_overrides

    run_dir = resolve_run(run)
    ckpt = load_checkpoint(run_dir)
    run_dir = run_dir if run_dir.is_dir() else run_dir.parent
    saved = DistillConfig.from_dict(ckpt.get("config") or {}, where=f"{run_dir}/checkpoint.pt config")
    cfg = merge(saved, parse_overrides(overrides or []), where="--set") if overrides else saved
    before, after = _flat(saved.to_dict()), _flat(cfg.to_dict())
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)
                     and not k.startswith(RESUMABLE))
    if changed:
        shown = ", ".join(f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in changed)
        raise ConfigError(f"run {run_dir} was trained with other settings ({shown})",
                          "--resume continues a run as it was configured; drop those flags, or start a new run")
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, dir=str(run_dir.parent), name=run_dir.name))
    validate(cfg)
    return cfg, run_dir
