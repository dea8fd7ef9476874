"""Running a streaming ONNX (`student.stream.onnx`) one frame at a time, with its state.

The file's interface (edgekd.export.streaming writes it; other tools call it by these names):

    inputs   frame        float32 (N, 3, S, S)          normalized like the clip model's input
             state_in_K   float32 (N, C_K, H_K, W_K)    K = 0, 1, ...; zeros start a stream
    outputs  logits       float32 (N, classes)          this frame's logits
             state_out_K  same shape as state_in_K      feed back as state_in_K with the next frame

`StreamRunner` keeps the state between `step` calls. Its `run(clips)` makes it a Runner over clips
(edgekd.runtime.runners): each clip starts from zero state and the answer is the mean of the T
per-frame logits, which is what the clip model computes; so the parity comparator, the metrics
and the latency harness take a streaming artifact like any other.
"""

from __future__ import annotations

import numpy as np

from edgekd.errors import BenchError
from edgekd.runtime.artifact import FILES
from edgekd.runtime.runners import OrtRunner

FRAME_INPUT = "frame"
STATE_IN, STATE_OUT = "state_in_", "state_out_"
STREAM_FILE = FILES["stream"]


def state_names(n: int) -> tuple[list[str], list[str]]:
    return [f"{STATE_IN}{k}" for k in range(n)], [f"{STATE_OUT}{k}" for k in range(n)]


class StreamRunner(OrtRunner):
    """ONNX Runtime session of a streaming model; `reset(n)` then `step(frame)` per frame."""

    def __init__(self, onnx_path, provider: str = "cpu", precision: str = "fp32", **kwargs):
        super().__init__(onnx_path, provider, precision, **kwargs)
        self.name = f"ort-{provider}-stream"
        self.state: list[np.ndarray] = []

    def load(self) -> None:
        super().load()
        inputs = {i.name: i for i in self.session.get_inputs()}
        n = sum(name.startswith(STATE_IN) for name in inputs)
        self.state_in, self.state_out = state_names(n)
        if FRAME_INPUT not in inputs or any(s not in inputs for s in self.state_in):
            raise BenchError(f"{self.path} is not a streaming model (inputs: {', '.join(inputs)})",
                             "export one with `edgekd export RUN --streaming`")
        self.frame_shape = list(inputs[FRAME_INPUT].shape)            # [N or "batch", 3, S, S]
        self.state_shapes = [list(inputs[s].shape)[1:] for s in self.state_in]
        self.input_name, self.input_shape = FRAME_INPUT, None        # clips of any batch go through run()
        self.outputs = ["logits", *self.state_out]

    def reset(self, batch: int = 1) -> None:
        """Zero state for `batch` streams: what a new video (or camera) starts from."""
        self.state = [np.zeros((batch, *shape), np.float32) for shape in self.state_shapes]

    def step(self, frame: np.ndarray) -> np.ndarray:
        """One frame (N, 3, S, S) -> its logits (N, classes); the state moves on by one frame."""
        if not self.state or len(self.state[0]) != len(frame):
            self.reset(len(frame))
        feeds = {FRAME_INPUT: np.ascontiguousarray(frame, dtype=np.float32), **dict(zip(self.state_in, self.state))}
        logits, *self.state = self.session.run(self.outputs, feeds)
        return logits

    def frame_logits(self, clips: np.ndarray) -> np.ndarray:
        """(N, 3, T, S, S) clips, each from zero state -> per-frame logits (N, T, classes)."""
        self.reset(len(clips))
        return np.stack([self.step(clips[:, :, t]) for t in range(clips.shape[2])], axis=1)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Clips (N, 3, T, S, S) -> mean per-frame logits (N, classes): the clip model's function."""
        return self.frame_logits(batch).mean(axis=1)


def sliding_logits(per_frame: np.ndarray, window: int) -> np.ndarray:
    """(N, F, C) per-frame logits of an unbroken stream -> (N, F - window + 1, C): at each frame
    the mean over the last `window` frames, the answer a live camera gets every frame."""
    c = np.cumsum(np.concatenate([np.zeros_like(per_frame[:, :1]), per_frame], axis=1), axis=1)
    return (c[:, window:] - c[:, :-window]) / window
