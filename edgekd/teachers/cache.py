"""Teacher output cache: run the teacher(s) once per clip, read the outputs back during distillation.

Layout of a cache folder (written atomically: a temp folder renamed into place):

    index.json                 format, data spec, dataset fingerprint, clips per video, one record per
                               teacher (fingerprint, widths), per array (file, shape, dtype, sha256)
                               and per video (id, path, size, mtime_ns, clip starts, decoded ok)
    <teacher>.embed.npy        fp16 (N, K, D)      clip embeddings
    <teacher>.logits.npy       fp16 (N, K, C)      class logits (teachers with a head)
    <teacher>.temporal.npy     fp16 (N, K, T', D)  per-time embeddings (optional)
    timebalance.score.npy      fp16 (N,)           Eq. 6 score s per video (invariant + distinctive)

N videos (rows in manifest order), K clips per video at the data layer's deterministic uniform
starts (ClipDataset mode "eval"), keyed by (video_id, clip start). Arrays are memory-mapped, so a
lookup reads only the rows it needs.

Nothing stale is ever served: a teacher whose fingerprint changed, another data spec, or a video file
whose size or mtime changed is detected when the cache is opened (or looked up) and raises
`StaleCacheError`, naming what changed and how to rebuild. A damaged file raises `TeacherError`.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from edgekd import __version__
from edgekd.data.spec import DataSpec
from edgekd.errors import TeacherError
from edgekd.io import atomic_folder, write_json
from edgekd.teachers.base import Teacher
from edgekd.teachers.timebalance import projected, temporal_similarity
from edgekd.teachers.vl_progress import progress_bar

FORMAT = "edgekd-teacher-cache"
VERSION = 2  # 2: the stored Eq. 6 score is computed on the teachers' projections
INDEX = "index.json"
KINDS = ("embed", "logits", "temporal")
SCORE = "timebalance.score"
HASH_LIMIT = 256 << 20  # open() hashes every array when the cache is at most this big
REBUILD = "rebuild it: `edgekd teacher cache ... --force` (or build_cache(..., force=True))"


class StaleCacheError(TeacherError):
    """The cache was built from other teacher weights, another data spec, or older video files."""


def _file_state(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _spec_key(spec: DataSpec | Mapping[str, Any]) -> dict[str, Any]:
    d = spec.to_dict() if isinstance(spec, DataSpec) else dict(spec)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


class TeacherCache:
    """A read-only view of a cache folder. Open with `TeacherCache.open(path, teachers=..., data_spec=...)`."""

    def __init__(self, path: str | Path, verify: str = "auto"):
        self.path = Path(path)
        index_path = self.path / INDEX
        if not index_path.is_file():
            raise TeacherError(f"no teacher cache at {self.path} (missing {INDEX})",
                               "build one with `edgekd teacher cache` (or build_cache)")
        try:
            self.index = json.loads(index_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TeacherError(f"{index_path} is corrupted: {e}", REBUILD) from e
        if not isinstance(self.index, dict) or self.index.get("format") != FORMAT:
            raise TeacherError(f"{index_path} is not an edgekd teacher cache index", REBUILD)
        if self.index.get("version") != VERSION:
            raise StaleCacheError(f"{self.path} has cache format version {self.index.get('version')}, "
                                  f"this edgekd reads {VERSION}", REBUILD)
        try:
            self.clips_per_video = int(self.index["clips_per_video"])
            self.videos: list[dict[str, Any]] = self.index["videos"]
            self.arrays: dict[str, dict[str, Any]] = self.index["arrays"]
            self.teachers: dict[str, dict[str, Any]] = self.index["teachers"]
            self.data_spec = DataSpec.from_dict(self.index["data_spec"])
            self._key = {(v["id"], int(s)): (row, k) for row, v in enumerate(self.videos)
                         for k, s in enumerate(v["starts"])}
        except (KeyError, TypeError, ValueError) as e:
            raise TeacherError(f"{index_path} is corrupted (bad field: {e})", REBUILD) from e
        self._rows = {v["id"]: row for row, v in enumerate(self.videos)}
        self._mm: dict[str, np.ndarray] = {}
        self._check_files(verify)
        self.stale: dict[str, str] = self._stale_videos()

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, teachers: Mapping[str, Teacher] | Teacher | None = None,
             fingerprints: Mapping[str, str] | None = None, data_spec: DataSpec | None = None,
             verify: str = "auto") -> "TeacherCache":
        """Open and check a cache against the teachers (or their fingerprints) and data spec in use.

        Raises StaleCacheError when a teacher fingerprint or the data spec differ; videos whose file
        changed are listed in `.stale` and raise when looked up. `verify`: "hash" checks every array's
        sha256, "size" only headers and sizes, "auto" hashes caches up to 256 MiB.
        """
        cache = cls(path, verify)
        fps = dict(fingerprints or {})
        if teachers is not None:
            teachers = teachers if isinstance(teachers, Mapping) else {"teacher": teachers}
            fps.update({name: t.fingerprint for name, t in teachers.items()})
        for name, fp in fps.items():
            if name not in cache.teachers:
                raise StaleCacheError(f"cache {cache.path} holds no outputs of teacher {name!r} "
                                      f"(it has {', '.join(cache.teachers)})", REBUILD)
            if cache.teachers[name]["fingerprint"] != fp:
                raise StaleCacheError(f"cache {cache.path} was built with other weights of teacher {name!r} "
                                      f"(fingerprint {cache.teachers[name]['fingerprint']}, now {fp})", REBUILD)
        if data_spec is not None and _spec_key(data_spec) != _spec_key(cache.data_spec):
            diff = [k for k, v in _spec_key(data_spec).items() if _spec_key(cache.data_spec).get(k) != v]
            raise StaleCacheError(f"cache {cache.path} was built for another data spec ({', '.join(diff)} differ)",
                                  REBUILD)
        return cache

    def _check_files(self, verify: str) -> None:
        total = sum((self.path / a["file"]).stat().st_size for a in self.arrays.values()
                    if (self.path / a["file"]).is_file())
        deep = verify == "hash" or (verify == "auto" and total <= HASH_LIMIT)
        for key, a in self.arrays.items():
            f = self.path / a["file"]
            if not f.is_file():
                raise TeacherError(f"teacher cache file {f} is missing", REBUILD)
            try:
                mm = np.load(f, mmap_mode="r")
            except Exception as e:  # numpy raises ValueError/OSError/EOFError on damaged files
                raise TeacherError(f"teacher cache file {f} is corrupted: {e}".splitlines()[0], REBUILD) from e
            if list(mm.shape) != a["shape"] or str(mm.dtype) != a["dtype"] or f.stat().st_size != a["bytes"]:
                raise TeacherError(f"teacher cache file {f} is corrupted: shape {list(mm.shape)} {mm.dtype}, "
                                   f"{f.stat().st_size} bytes; index says {a['shape']} {a['dtype']}, {a['bytes']}",
                                   REBUILD)
            if deep and _sha256(f) != a["sha256"]:
                raise TeacherError(f"teacher cache file {f} is corrupted (sha256 differs from the index)", REBUILD)
            self._mm[key] = mm

    def verify(self) -> None:
        """Hash every array against the index (TeacherError on a mismatch)."""
        self._check_files("hash")

    def _stale_videos(self) -> dict[str, str]:
        stale = {}
        for v in self.videos:
            now = _file_state(Path(v["path"]))
            if now is None:
                stale[v["id"]] = f"{v['path']} no longer exists"
            elif list(now) != [v["size"], v["mtime_ns"]]:
                stale[v["id"]] = f"{v['path']} changed since the cache was built (size or mtime)"
        return stale

    # -- lookups ---------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self.teachers)

    def fingerprint(self, name: str) -> str:
        return self.teachers[name]["fingerprint"]

    def starts(self, video_id: str) -> list[int]:
        """The clip starts cached for one video (sample training clips from these to hit the cache)."""
        return list(self.videos[self._row(video_id)]["starts"])

    def _row(self, video_id: str) -> int:
        row = self._rows.get(video_id)
        if row is None:
            raise TeacherError(f"video {video_id!r} is not in teacher cache {self.path}",
                               "build the cache from the same dataset the run uses")
        if video_id in self.stale:
            raise StaleCacheError(f"teacher cache {self.path}: {self.stale[video_id]}", REBUILD)
        if not self.videos[row]["ok"]:
            raise TeacherError(f"video {video_id!r} failed to decode when cache {self.path} was built",
                               "fix or drop the video, then " + REBUILD)
        return row

    def locate(self, video_ids: Sequence[str], starts: torch.Tensor | Sequence[int] | None = None
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """(video_id, start) pairs -> (rows, clip slots). starts (B,) or (B, n); None = all K clips."""
        rows = np.array([self._row(v) for v in video_ids], dtype=np.int64)
        if starts is None:
            return rows, None
        st = torch.as_tensor(starts).reshape(len(video_ids), -1).tolist()
        slots = np.empty((len(video_ids), len(st[0]) if st else 0), dtype=np.int64)
        for b, (vid, row_starts) in enumerate(zip(video_ids, st)):
            for j, s in enumerate(row_starts):
                hit = self._key.get((vid, int(s)))
                if hit is None:
                    raise TeacherError(f"teacher cache {self.path} has no clip of {vid!r} starting at frame {s} "
                                       f"(cached starts: {self.starts(vid)})",
                                       "sample clips at the cached starts (TeacherCache.starts), or rebuild "
                                       "the cache with the run's clips_per_video")
                slots[b, j] = hit[1]
        return rows, slots

    def get(self, name: str, kind: str, video_ids: Sequence[str],
            starts: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        """Float32 tensor of one teacher's `kind` ("embed", "logits", "temporal") for the given clips.

        starts (B,) -> (B, ...); (B, n) -> (B, n, ...); None -> all K clips, (B, K, ...).
        """
        key = f"{name}.{kind}"
        if key not in self._mm:
            have = ", ".join(k for k in self._mm if k != SCORE)
            raise TeacherError(f"teacher cache {self.path} holds no {kind!r} of teacher {name!r} (it has {have})",
                               "logits need a fine-tuned teacher; temporal needs build_cache(temporal=True)")
        rows, slots = self.locate(video_ids, starts)
        mm = self._mm[key]
        out = mm[rows] if slots is None else mm[rows[:, None], slots]   # (B, K|n, ...)
        if slots is not None and torch.as_tensor(starts).dim() == 1:
            out = out[:, 0]
        return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))

    def embed(self, name: str, video_ids: Sequence[str], starts=None) -> torch.Tensor:
        return self.get(name, "embed", video_ids, starts)

    def logits(self, name: str, video_ids: Sequence[str], starts=None) -> torch.Tensor:
        return self.get(name, "logits", video_ids, starts)

    def temporal(self, name: str, video_ids: Sequence[str], starts=None) -> torch.Tensor:
        return self.get(name, "temporal", video_ids, starts)

    def scores(self, video_ids: Sequence[str]) -> torch.Tensor:
        """(B,) TimeBalance temporal-similarity scores s (Eq. 6) of the videos."""
        if SCORE not in self._mm:
            raise TeacherError(f"teacher cache {self.path} holds no TimeBalance scores",
                               "build it with both an 'invariant' and a 'distinctive' teacher")
        rows = np.array([self._row(v) for v in video_ids], dtype=np.int64)
        return torch.from_numpy(np.asarray(self._mm[SCORE][rows], dtype=np.float32))

    def __repr__(self) -> str:
        return (f"TeacherCache({self.path}, teachers={self.names}, videos={len(self.videos)}, "
                f"clips_per_video={self.clips_per_video}, stale={len(self.stale)})")


# -- building ----------------------------------------------------------------------------------------

def _device(t: Teacher) -> torch.device:
    return next(iter(t.parameters()), torch.zeros(0)).device


def _logits(t: Teacher, emb: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Logits from the embedding already computed, unless the teacher has its own `logits`."""
    if type(t).logits is Teacher.logits and t.head is not None:
        return t.head(emb).float()
    return t.logits(x)


@torch.no_grad()
def build_cache(teachers: Teacher | Mapping[str, Teacher], manifest, data_spec: DataSpec, out_path: str | Path,
                clips_per_video: int = 4, *, temporal: bool = False, batch_size: int = 8, num_workers: int = 2,
                backend: str = "auto", force: bool = False, progress: bool = True) -> TeacherCache:
    """Run the teacher(s) over every video's K uniform clips and store the outputs in `out_path`.

    teachers: one Teacher (stored as "teacher") or {name: Teacher}; with both "invariant" and
    "distinctive" the per-video TimeBalance score (Eq. 6) is stored too. An existing cache that is
    still valid for these teachers, spec and videos is returned untouched; a stale or different one
    is replaced only with `force=True`.
    """
    from edgekd.data.dataset import ClipDataset, make_loader

    teachers = dict(teachers) if isinstance(teachers, Mapping) else {"teacher": teachers}
    out_path = Path(out_path)
    if clips_per_video < 1:
        raise TeacherError(f"clips_per_video must be >= 1, got {clips_per_video}")
    for name in teachers:
        if not name.replace("_", "").replace("-", "").isalnum():
            raise TeacherError(f"teacher name {name!r} must be letters, digits, '-' or '_' (it names files)")
    if out_path.exists() and not (out_path / INDEX).exists() and any(out_path.iterdir()):
        raise TeacherError(f"{out_path} exists and is not a teacher cache; refusing to replace it",
                           "pass an empty or new folder for the cache")
    if (out_path / INDEX).exists():
        reason = _reuse_reason(out_path, teachers, manifest, data_spec, clips_per_video, temporal)
        if reason is None:
            return TeacherCache.open(out_path, teachers=teachers, data_spec=data_spec)
        if not force:
            raise StaleCacheError(f"{out_path} already holds a teacher cache that does not fit: {reason}", REBUILD)

    scores = "invariant" in teachers and "distinctive" in teachers and clips_per_video >= 2
    N, K = len(manifest.entries), clips_per_video
    dataset = ClipDataset(manifest, data_spec, mode="eval", clips_per_video=K, backend=backend)
    loader = make_loader(dataset, batch_size, shuffle=False, num_workers=num_workers)
    for t in teachers.values():
        t.eval()

    videos = [{"id": e.video_id, "path": str(Path(e.path).resolve()), "starts": [], "ok": False,
               **dict(zip(("size", "mtime_ns"), _file_state(Path(e.path)) or (-1, -1)))}
              for e in manifest.entries]
    with atomic_folder(out_path) as tmp:
        arrays: dict[str, np.ndarray] = {}

        def store(key: str, rows: np.ndarray, values: torch.Tensor) -> None:
            """values (B, ...) into rows of the fp16 memmap `key` (created on first use: N rows)."""
            v = values.detach().float().cpu().numpy().astype(np.float16)
            if not np.isfinite(v).all():
                raise TeacherError(f"{key}: the teacher produced values that are not finite in fp16 "
                                   "(|x| > 65504 or NaN)", "check the teacher's weights; the cache stores fp16")
            if key not in arrays:
                arrays[key] = np.lib.format.open_memmap(tmp / f"{key}.npy", mode="w+", dtype=np.float16,
                                                        shape=(N, *v.shape[1:]))
            arrays[key][rows] = v

        with progress_bar("teacher cache", N, "videos", quiet=not progress) as advance:
            for batch in loader:
                x = batch["video"] if K > 1 else batch["video"].unsqueeze(1)  # (B, K, 3, T, H, W)
                B, rows = x.shape[0], batch["index"].numpy()
                emb = {}
                for name, t in teachers.items():
                    flat = x.flatten(0, 1).to(_device(t))                   # (B*K, 3, T, H, W)
                    e = t.embed(flat)                                       # (B*K, D)
                    emb[name] = e.reshape(B, K, -1)
                    store(f"{name}.embed", rows, emb[name])
                    if t.num_classes:
                        store(f"{name}.logits", rows, _logits(t, e, flat).reshape(B, K, -1))
                    per_time = t.embed_temporal(flat) if temporal else None     # (B*K, T', D) or None
                    if per_time is not None:
                        store(f"{name}.temporal", rows, per_time.reshape(B, K, *per_time.shape[1:]))
                if scores:                                                  # Eq. 6 over the K clips
                    z = {k: projected(teachers[k], emb[k]).cpu() for k in ("invariant", "distinctive")}
                    store(SCORE, rows, temporal_similarity(z["invariant"], z["distinctive"]))
                for r, st in zip(rows, batch["starts"].reshape(B, -1).tolist()):
                    videos[r]["starts"], videos[r]["ok"] = [int(v) for v in st[:K]], True
                advance(B)

        if not any(v["ok"] for v in videos):
            raise TeacherError("no video of the dataset could be decoded; the teacher cache would be empty",
                               "check the dataset with `edgekd data check`")
        index_arrays = {}
        for key, mm in arrays.items():
            mm.flush()
            f = tmp / f"{key}.npy"
            index_arrays[key] = {"file": f.name, "shape": list(mm.shape), "dtype": str(mm.dtype),
                                 "bytes": f.stat().st_size, "sha256": _sha256(f)}
        arrays.clear()  # drop the memmaps before the folder is renamed
        write_json(tmp / INDEX, {
            "format": FORMAT, "version": VERSION, "edgekd_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "dataset": manifest.fingerprint(), "clips_per_video": K, "temporal": temporal,
            "data_spec": _spec_key(data_spec),
            "teachers": {name: {"fingerprint": t.fingerprint, "type": type(t).__name__,
                                "embed_dim": int(t.embed_dim), "num_classes": t.num_classes}
                         for name, t in teachers.items()},
            "arrays": index_arrays,
            "videos": videos,
        })
    return TeacherCache.open(out_path, teachers=teachers, data_spec=data_spec)


def _reuse_reason(path: Path, teachers: Mapping[str, Teacher], manifest, spec: DataSpec, K: int,
                  temporal: bool) -> str | None:
    """Why an existing cache cannot serve this request, or None when it can be reused as is."""
    try:
        cache = TeacherCache.open(path, teachers=teachers, data_spec=spec)
    except TeacherError as e:
        return e.message
    if set(cache.names) != set(teachers):
        return f"it holds teachers {cache.names}, asked for {sorted(teachers)}"
    if cache.clips_per_video != K:
        return f"it has {cache.clips_per_video} clips per video, asked for {K}"
    if temporal and not cache.index.get("temporal"):
        return "it has no per-time embeddings"
    if cache.index.get("dataset") != manifest.fingerprint():
        return "it was built from another dataset (videos, labels or splits differ)"
    if cache.stale:
        first = next(iter(cache.stale.values()))
        return f"{len(cache.stale)} video(s) changed, e.g. {first}"
    return None
