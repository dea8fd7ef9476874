"""The one evaluation clip-set builder: export's parity and INT8 accuracy, bench's accuracy and the
training loop's per-epoch test accuracy all see the same clips for the same (dataset, split, limit).

    clips:   one centre clip per video (ClipDataset mode="eval"), normalized with the model's spec
    videos:  `eval_entries` - the split's videos taken round-robin over classes, so any `limit` is a
             class-balanced prefix of the same order (limit=None: every video of the split)
    labels:  dataset labels mapped onto the model's classes BY NAME; a class the model does not know
             is an error (strict) or leaves the set unlabeled (labels -1, accuracy not computed)

`fingerprint` names the exact clip set (videos + decoding spec): artifact.json and report.json
record it, so two accuracy figures can be checked to come from the same clips.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgekd.errors import BenchError, DataError

SYNTHETIC = "embedded synthetic dataset"


@dataclass
class EvalSet:
    x: np.ndarray              # (N, 3, T, S, S) float32, normalized with the model's spec
    labels: np.ndarray         # (N,) int64 in the MODEL's class indices; -1 where unknown
    source: str                # dataset path or "embedded synthetic dataset"
    split: str
    note: str
    labeled: bool              # labels are the model's classes: accuracy means something
    fingerprint: str           # sha256 (12 hex) of the videos and the decoding spec
    dataset: Any = None        # the ClipDataset the clips came from (end-to-end timing re-decodes from it)

    def __len__(self) -> int:
        return len(self.x)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "split": self.split, "clips": len(self), "labeled": self.labeled,
                "fingerprint": self.fingerprint, **({"note": self.note} if self.note else {})}


def open_dataset(data: str | Path | None, fallback: bool = False):
    """(manifest, source, note). With `fallback`, an unusable dataset gives the embedded synthetic one."""
    from edgekd.data.manifest import load_dataset

    if data is None:
        return load_dataset(None), SYNTHETIC, ""  # a run without data.path trained on the synthetic default
    try:
        return load_dataset(data), str(data), ""
    except DataError as e:
        if not fallback:
            raise
        return load_dataset(None), SYNTHETIC, f"dataset {data} unavailable ({e.message}); used the {SYNTHETIC}"


def class_mapping(dataset_classes: list[str], model_classes: list[str], where: str) -> np.ndarray:
    """Index array: dataset label -> model class index. Unknown classes raise DataError."""
    index = {c: i for i, c in enumerate(model_classes)}
    unknown = [c for c in dataset_classes if c not in index]
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:8]) + (" ..." if len(unknown) > 8 else "")
        raise DataError(f"{where}: {len(unknown)} class(es) the model does not know: {shown}",
                        f"the model knows {len(model_classes)} classes ({', '.join(model_classes[:5])}"
                        f"{', ...' if len(model_classes) > 5 else ''}); pass the dataset it was trained on "
                        "with --eval-data")
    return np.array([index[c] for c in dataset_classes], dtype=np.int64)


def eval_entries(entries: list, limit: int | None = None) -> list:
    """Round-robin over labels (sorted; unlabeled last): a `limit` prefix covers every class evenly."""
    by_label: dict[Any, list] = {}
    for e in entries:
        by_label.setdefault(e.label, []).append(e)
    queues = [list(v) for _, v in sorted(by_label.items(), key=lambda kv: (kv[0] is None, str(kv[0])))]
    limit = len(entries) if limit is None else limit
    out: list = []
    while len(out) < limit and any(queues):
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out


def fingerprint(entries: list, spec) -> str:
    key = json.dumps([[str(e.path), e.label] for e in entries] + [spec.to_dict()], sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def build_evalset(data: str | Path | None, spec, *, split: str = "test", limit: int | None = None,
                  fallback_split: str | None = None, dataset_fallback: bool = False, strict: bool = True,
                  reporter=None, batch_size: int = 8) -> EvalSet:
    """Decode the evaluation clips of `split` (see the module docstring for which and how)."""
    from edgekd.data.dataset import ClipDataset, make_loader

    manifest, source, note = open_dataset(data, fallback=dataset_fallback)
    part = manifest.split(split)
    if not part.entries and fallback_split:
        note = (note + "; " if note else "") + f"no {split!r} split, used {fallback_split!r}"
        split, part = fallback_split, manifest.split(fallback_split)
    if not part.entries:
        raise DataError(f"{source}: split {split!r} has no videos", "pass a dataset with a test split (--data)")
    try:
        mapping = class_mapping(list(manifest.class_names), list(spec.class_names), source)
        labeled = True
    except DataError:
        if strict:
            raise
        mapping, labeled = np.full(len(manifest.class_names), -1, dtype=np.int64), False
        note = (note + "; " if note else "") + "its classes are not the model's: accuracy not computed"
    chosen = eval_entries(part.entries, limit)
    # a subset keeps the dataset's defaults (decode size, crop): the clips training evaluates on
    dataset = ClipDataset(part.subset(chosen), spec, mode="eval")
    loader = make_loader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    xs, ys = [], []
    from edgekd.report import Reporter

    with (reporter or Reporter.quiet()).bar(f"decoding {split} clips", len(chosen)) as bar:
        for batch in loader:
            xs.append(batch["video"].numpy().astype(np.float32, copy=False))
            ys.append(batch["label"].numpy().astype(np.int64))
            bar.advance(len(ys[-1]))
    if not xs:
        raise DataError(f"{source}: none of the {len(chosen)} {split} videos decoded",
                        "check the videos with `edgekd data check`")
    x, y = np.concatenate(xs), np.concatenate(ys)
    if x.shape[1:] != tuple(spec.input_shape(1)[1:]):
        raise BenchError(f"{source}: decoded clips are {x.shape[1:]}, the model expects {spec.input_shape(1)[1:]}")
    labels = np.where(y >= 0, mapping[np.clip(y, 0, None)], -1)
    return EvalSet(x=x, labels=labels, source=source, split=split, note=note, labeled=labeled,
                   fingerprint=fingerprint(chosen, spec), dataset=dataset)


def check_input_shape(declared: list[Any] | tuple[Any, ...], spec, where: str) -> None:
    """The artifact's input (batch, 3, T, S, S) must match the data spec's clips (batch may be symbolic)."""
    want = list(spec.input_shape(1))[1:]
    got = list(declared)[1:]

    def same(a: Any, b: int) -> bool:
        return not isinstance(a, int) or a <= 0 or a == b  # symbolic or dynamic dims accept anything

    if len(declared) != 5 or not all(same(a, b) for a, b in zip(got, want)):
        raise BenchError(f"{where} expects input {list(declared)} but the data spec gives clips "
                         f"(batch, {', '.join(map(str, want))}) (frames={spec.frames}, size={spec.size})",
                         "re-export the run (`edgekd export RUN --force`) or bench the export that belongs to it")
