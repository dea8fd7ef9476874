"""`edgekd stream`: a video file or a camera through the streaming student, one answer per frame.

    edgekd stream runs/NAME clip.mp4                    running top-k + per-frame latency
    edgekd stream runs/NAME clip.mp4 --out labeled.mp4  + the video with the label drawn on it
    edgekd stream runs/NAME --camera 0                  a live camera (OpenCV or PyAV), Ctrl-C stops
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgekd.cli import console
from edgekd.runtime.artifact import FILES


def register(app: typer.Typer) -> None:
    @app.command("stream")
    def stream(
        run: Path = typer.Argument(..., metavar="RUN_OR_EXPORT",
                                   help=f"Run folder, its export folder, or a {FILES['stream']} file."),
        video: Optional[Path] = typer.Argument(None, help="Video file to play (or --camera N)."),
        camera: Optional[int] = typer.Option(None, "--camera", help="Camera index to read instead of a file."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the video with the label drawn on it (.mp4)."),
        top_k: int = typer.Option(3, "--top-k", "-k", help="Classes shown per answer."),
        every: int = typer.Option(1, "--every", help="Print one line every N answered frames."),
        max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Stop after this many source frames."),
    ) -> None:
        """Play a video (or camera) through student.stream.onnx: the running top-k and latency per frame."""
        from edgekd.errors import ConfigError
        from edgekd.stream.player import Mp4Writer, draw_label, find_stream_model, label_text, open_source, play, summary

        if (video is None) == (camera is None):
            raise ConfigError("pass either a VIDEO file or --camera N", "e.g. edgekd stream runs/NAME clip.mp4")
        if every < 1 or top_k < 1:
            raise ConfigError("--every and --top-k must be at least 1")
        if out is not None and out.suffix.lower() != ".mp4":
            raise ConfigError(f"--out {out} is not an .mp4 file", "pass --out NAME.mp4")
        model = find_stream_model(run)
        frames, fps, name = open_source(video, camera)
        rep = console.reporter()
        rep.step(f"streaming {name} ({fps:.1f} fps) through {model}")
        writer = Mp4Writer(out, fps) if out is not None else None
        latencies: list[float] = []
        seen, text = 0, ""
        try:
            for rgb, answer in play(model, frames, top_k=top_k, max_frames=max_frames):
                seen += 1
                if answer is not None:
                    latencies.append(answer.latency_ms)
                    text = label_text(answer)
                    if len(latencies) % every == 0:
                        console.out.print(f"frame {answer.index:5d}  {answer.latency_ms:6.2f} ms  "
                                          f"[{answer.window:2d} frames]  {text}", highlight=False, markup=False)
                if writer is not None:
                    writer.write(draw_label(rgb, text))
        except KeyboardInterrupt:
            rep.warn("stopped by Ctrl-C")
        finally:
            if writer is not None:
                writer.close()
        s = summary(latencies, seen)
        rep.done(f"{s['frames']} frames, {s['model_frames']} through the model: p50 {s['p50_ms']:.2f} ms, "
                 f"p99 {s['p99_ms']:.2f} ms per frame" + (f"; wrote {out}" if writer is not None else ""))
