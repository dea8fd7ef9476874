"""Probe every video of a manifest: what `edgekd data inspect` reports, and a health check for code.

`inspect_manifest` reads each container header (and, with `decode=True`, decodes the first and
last frame, which catches truncated files) and returns per-video facts plus every unreadable file
with its reason.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from edgekd.data.decode import VideoInfo, failure_reason, probe, read_frames
from edgekd.data.manifest import Manifest, VideoEntry
from edgekd.errors import VideoDecodeError
from edgekd.report import Reporter


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


def inspect_manifest(manifest: Manifest, decode: bool = False, reporter: Reporter | None = None) -> InspectReport:
    """Probe (and with `decode`, decode the ends of) every video; problems include those skipped at load."""
    infos: dict[int, VideoInfo] = {}
    problems = list(manifest.skipped)
    with (reporter or Reporter.quiet()).bar("probe", len(manifest.entries), unit="videos") as bar:
        for k, entry in enumerate(manifest.entries):
            try:
                infos[k] = check_video(entry, decode)
            except VideoDecodeError as e:
                problems.append((str(entry.path), failure_reason(e, entry.path)))
            bar.advance()
    return InspectReport(manifest, infos, problems)
