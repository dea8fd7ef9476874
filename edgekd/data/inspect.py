"""Probe every video of a manifest: what `edgekd data inspect` reports, and a health check for code.

`inspect_manifest` reads each container header (and, with `decode=True`, decodes the first and
last frame, which catches truncated files) and returns per-video facts plus every unreadable file
with its reason. `drop_unreadable` returns the manifest without those, warning once.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from edgekd.data.decode import VideoInfo, probe, read_frames
from edgekd.data.manifest import Manifest, VideoEntry, warn_skipped
from edgekd.errors import VideoDecodeError


@dataclasses.dataclass
class InspectReport:
    manifest: Manifest
    infos: dict[int, VideoInfo]           # entry position -> probed facts, readable videos only
    problems: list[tuple[str, str]]      # (path, reason) for every unreadable video

    def durations(self, split: str | None = None) -> list[float]:
        return [i.duration for k, i in self.infos.items()
                if split is None or self.manifest.entries[k].split == split]

    def fps_counts(self) -> Counter:
        return Counter(round(i.fps, 2) for i in self.infos.values())

    def resolution_counts(self) -> Counter:
        return Counter(f"{i.width}x{i.height}" for i in self.infos.values())

    def codec_counts(self) -> Counter:
        return Counter(i.codec for i in self.infos.values())


def check_video(entry: VideoEntry, decode: bool = False) -> VideoInfo:
    info = probe(entry.path)
    if decode:
        read_frames(entry.path, [0, info.num_frames - 1], size=32)
    return info


def inspect_manifest(manifest: Manifest, decode: bool = False, progress: bool = True) -> InspectReport:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    infos: dict[int, VideoInfo] = {}
    problems = list(manifest.skipped)
    columns = (TextColumn("[bold]probe"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.speed} videos/s"),
               TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=not progress) as bar:
        for k, entry in enumerate(bar.track(manifest.entries, description="probe")):
            try:
                infos[k] = check_video(entry, decode)
            except VideoDecodeError as e:
                reason = e.message.replace(f"cannot decode {entry.path}: ", "").replace(str(entry.path), "this file")
                problems.append((str(entry.path), reason))
    return InspectReport(manifest, infos, problems)


def drop_unreadable(manifest: Manifest, decode: bool = False) -> Manifest:
    """The manifest without videos that fail to probe (or decode); one warning lists them."""
    report = inspect_manifest(manifest, decode, progress=False)
    bad = {str(manifest.entries[k].path) for k in range(len(manifest.entries)) if k not in report.infos}
    warn_skipped("unreadable videos", sorted(bad))
    kept = manifest.subset(e for k, e in enumerate(manifest.entries) if k in report.infos)
    kept.skipped.extend(p for p in report.problems if p[0] in bad)
    return kept
