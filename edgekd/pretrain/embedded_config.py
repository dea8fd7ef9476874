"""The recipe of edgekd's built-in teachers and where their folders live (edgekd.pretrain.embedded builds them).

    EmbeddedConfig                  how the teachers train: small networks, short schedules
    teacher_folder(name, ...)       $EDGEKD_HOME/teachers/<dataset>-<split>/<name>-<recipe>/
    resolve_split / split_fingerprint   the split a build sees, and its name in the folder path
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from edgekd.data.spec import DataSpec
from edgekd.errors import ConfigError
from edgekd.home import edgekd_home
from edgekd.pretrain.ssl import SSLPretrainConfig
from edgekd.pretrain.vl import VLPretrainConfig, has_captions
from edgekd.teachers.loading import EMBEDDED_NAMES

NAMES = EMBEDDED_NAMES             # "vl", "invariant", "distinctive"
VERSION = 2                        # bump when the recipe changes: older folders are not reused
DEFAULT_LABELED_FRACTION = 0.1     # the split used when none is given (distill's default too)
BUILD_FILE = "build.json"
VL_TEXTS = ("auto", "captions", "prompts")


@dataclasses.dataclass(frozen=True)
class EmbeddedConfig:
    """How the embedded teachers are trained: small networks, short schedules (minutes on a CPU)."""

    net_size: int = 32                          # the teachers' own clip size (batches are resized to it)
    vl: dict = dataclasses.field(default_factory=dict)  # overrides of pretrain.vl.VLPretrainConfig
    vl_text: str = "auto"                       # captions | prompts | auto (captions when the data has them)
    vl_finetune_mode: str = "linear"            # its head starts as the zero-shot classifier
    ssl_backbone: str = "tiny3d"
    ssl_width: float = 0.5
    ssl_frames_in: str = "diff"                 # temporal gradients: appearance cancels, motion remains
    ssl_fidelity: str = "authors"               # SSL wiring: "authors" (their code) or "paper" (teachers.timebalance.FIDELITIES)
    ssl_epochs: int = 10
    ssl_batch_size: int = 32                    # the negatives of L_I are the other videos of the batch
    ssl_clips: int = 4                          # n clips per video (TimeBalance uses 4)
    ssl_frame_stride: int = 1                   # n consecutive clips tile the video, as in the paper
    ssl_warmup_epochs: int = 1
    ssl_jitter: float = 0.8                     # "paper" only: strong colour augmentation, colour is no shortcut
    ssl_grayscale_p: float = 0.5                # ("authors" draws the authors' augmentation instead)
    ssl_finetune_mode: str = "linear"           # "full" overfits 2 labeled videos per class (measured)
    ssl_finetune_epochs: int = 0                # 0 = finetune's default for the mode
    ssl_finetune_lr: float = 0.0
    seed: int = 0

    def for_dataset(self, manifest) -> "EmbeddedConfig":
        """`vl_text="auto"` resolved: captions when the dataset has them, else class-name prompts."""
        if self.vl_text not in VL_TEXTS:
            raise ConfigError(f"unknown VL teacher text source {self.vl_text!r}", "choose " + ", ".join(VL_TEXTS))
        if self.vl_text != "auto":
            return self
        return dataclasses.replace(self, vl_text="captions" if has_captions(manifest) else "prompts")

    def ssl_pretrain(self) -> SSLPretrainConfig:
        """How the invariant and distinctive teachers pretrain (edgekd.pretrain.ssl)."""
        return SSLPretrainConfig(backbone=self.ssl_backbone, backbone_kwargs={"width": self.ssl_width},
                                 epochs=self.ssl_epochs, batch_size=self.ssl_batch_size, clips=self.ssl_clips,
                                 warmup_epochs=self.ssl_warmup_epochs, frames_in=self.ssl_frames_in,
                                 fidelity=self.ssl_fidelity, jitter=self.ssl_jitter, grayscale_p=self.ssl_grayscale_p,
                                 seed=self.seed)

    def recipe(self, name: str) -> dict[str, Any]:
        """Everything that shapes teacher `name` (the vision-language recipe's defaults included)."""
        fields = dataclasses.asdict(self)
        if name == "vl":
            vl = dataclasses.asdict(dataclasses.replace(VLPretrainConfig(), net_size=self.net_size, seed=self.seed,
                                                        **self.vl))
            for key in ("num_workers", "max_bank_mb", "device"):  # how, not what: no effect on the teacher
                vl.pop(key, None)
            own = {"vl": vl, "vl_text": self.vl_text, "vl_finetune_mode": self.vl_finetune_mode}
        else:
            own = {k: v for k, v in fields.items() if k.startswith("ssl_")}
            if own["ssl_fidelity"] == "paper":              # the wiring before the switch existed:
                del own["ssl_fidelity"]                     # its folders keep their names
        return {"version": VERSION, "teacher": name, "net_size": self.net_size, "seed": self.seed, **own}

    def key(self, name: str, spec: DataSpec) -> str:
        """Fingerprint of teacher `name`'s recipe and the clips it trains on (the dataset's default DataSpec)."""
        blob = json.dumps({**self.recipe(name), "spec": spec.to_dict()}, sort_keys=True, default=str)
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


def teacher_folder(name: str, manifest, split, config: EmbeddedConfig | None = None) -> Path:
    """$EDGEKD_HOME/teachers/<dataset>-<split>/<name>-<recipe> for this dataset, split and recipe."""
    from edgekd.data.manifest import default_data_spec

    config = (config or EmbeddedConfig()).for_dataset(manifest)
    split = resolve_split(manifest, split)
    key = config.key(name, default_data_spec(manifest))
    return edgekd_home() / "teachers" / f"{manifest.fingerprint()}-{split_fingerprint(split)}" / f"{name}-{key}"
