"""Streaming export: `student.stream.onnx`, one frame in, that frame's logits out, state carried.

A student built with the online shift (`--set student.shift=online`) runs frame by frame: each
shift block hands C/shift_div channels of the current frame to the next one. Here those buffers
become explicit graph inputs and outputs (names and shapes: edgekd.runtime.stream), like the MIT
online-TSM demo's i0..i10 / o0..o10, so any runtime, Triton's implicit state included, can carry
them. The graph is traced from `forward_frame`, whose shift is written with Slice and Concat only:
TSM exports that write the shift in place come out of the exporter wrong (temporal-shift-module
#103, #181, #189).

Parity, on the same real clips as the clip export: from zero state, the mean of the streaming
model's per-frame logits over a clip's T frames must equal the clip model's logits, against the
PyTorch clip model (gated with the FP32 tolerance) and against student.onnx (recorded). That holds
exactly because the student's head is affine after the temporal mean (edgekd.students.mobilenet_tsm).
An FP16 copy (FP32 I/O, state included) and a Q/DQ INT8 copy (TensorRT's rules, edgekd.export.qdq)
follow the clip exports' rules when those are on. INT8 is calibrated statefully (as MoViNet's
stream models are): each calibration sample is a real training frame with the state that the
frames before it left, not zeros, so the state inputs get the ranges they see in a live stream.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from edgekd.errors import ExportError
from edgekd.runtime.artifact import FILES
from edgekd.runtime.stream import FRAME_INPUT, STREAM_FILE, state_names

STREAM_FP16_FILE, STREAM_INT8_FILE = FILES["stream-fp16"], FILES["stream-int8"]


def check_streamable(model, name: str) -> None:
    if not getattr(model, "streams", False):
        raise ExportError(f"{name} was not trained with the online shift, so it cannot run frame by frame",
                          "train it with --set student.shift=online (mobilenet_v3_*_tsm students), "
                          "then export with --streaming")


def _frame_step(model):
    import torch

    class FrameStep(torch.nn.Module):
        """(frame, *state_in) -> (logits, *state_out): forward_frame with the state as flat tensors."""

        def __init__(self):
            super().__init__()
            self.student = model

        def forward(self, frame, *state):
            logits, new = self.student.forward_frame(frame, list(state))
            return (logits, *new)

    return FrameStep().eval()


def export_stream_onnx(model, spec, path: Path, *, student_name: str, opset: int,
                       extra_metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the streaming ONNX (dynamic batch); returns its interface for artifact.json."""
    import onnx
    import torch

    from edgekd.export.onnx_export import set_producer, validate
    from edgekd.io import atomic_path
    from edgekd.runtime.artifact import OUTPUT_NAME, metadata

    model = model.eval().cpu()
    state = model.stream_state(2, spec.size)  # batch 2: the batch axis is never specialised to 1
    ins, outs = state_names(len(state))
    frame = torch.randn(2, 3, spec.size, spec.size, generator=torch.Generator().manual_seed(0))
    axes = {n: {0: "batch"} for n in [FRAME_INPUT, OUTPUT_NAME, *ins, *outs]}
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_frame_step(model), (frame, *state), buf, dynamo=False, opset_version=opset,
                              input_names=[FRAME_INPUT, *ins], output_names=[OUTPUT_NAME, *outs],
                              dynamic_axes=axes, do_constant_folding=True, export_params=True)
        raw = onnx.load_from_string(buf.getvalue())
    except Exception as e:  # noqa: BLE001 - the exporter raises many types
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"torch.onnx.export failed for the streaming {student_name!r} at opset {opset}: {msg}",
                          "export without --streaming and report the student and opset") from e
    validate(raw, path)
    shapes = [list(s.shape[1:]) for s in state]
    props = metadata(spec, student_name, opset, {
        **(extra_metadata or {}), "streaming": "1", "state_count": str(len(state)),
        "state_shapes": shapes,
        "input_layout": "frame: NCHW, RGB, float32 in [0,1] then (x - mean) / std; state_in_K: zeros to start",
        "clip_logits": "mean of the per-frame logits over `frames` frames from zero state"})
    del raw.metadata_props[:]
    for k, v in props.items():
        raw.metadata_props.add(key=k, value=v)
    set_producer(raw)
    validate(raw, path)
    with atomic_path(path) as t:
        onnx.save(raw, str(t))
    return {"frame": {"name": FRAME_INPUT, "shape": ["batch", 3, spec.size, spec.size]},
            "state": [{"input": i, "output": o, "shape": ["batch", *s]} for i, o, s in zip(ins, outs, shapes)],
            "outputs": [{"name": OUTPUT_NAME, "shape": ["batch", spec.num_classes]}],
            "clip_frames": spec.frames, "nodes": len(raw.graph.node)}


def stateful_feeds(stream_path: Path, clips) -> dict[str, Any]:
    """INT8 calibration samples of a streaming model: every frame of `clips` (N, 3, T, S, S) with the
    state the earlier frames of its clip left (zeros for the first) -> {input name: (N*T, ...)}."""
    import numpy as np

    from edgekd.runtime.stream import StreamRunner

    feeds: dict[str, list] = {}
    with StreamRunner(stream_path) as runner:
        runner.reset(len(clips))
        for t in range(clips.shape[2]):
            for k, v in zip([FRAME_INPUT, *runner.state_in], [clips[:, :, t], *runner.state]):
                feeds.setdefault(k, []).append(v)
            runner.step(clips[:, :, t])
    return {k: np.concatenate(v) for k, v in feeds.items()}


def stream_artifacts(stage: Path, *, rep, model, spec, name: str, opset: int, cmp, clip_onnx, tol,
                     fp16: bool, calib=None, int8_settings=None,
                     extra_metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """student.stream.onnx (+ FP16, + INT8 when `calib` clips are given) in `stage`, each proven on
    the comparator's clips; artifact entries.

    cmp: the clip export's Comparator (PyTorch clip model on the parity clips + noise);
    clip_onnx: the loaded student.onnx runner, compared with too; calib: an EvalSet of train clips.
    """
    from edgekd.export.parity import compare
    from edgekd.runtime.artifact import file_entry
    from edgekd.runtime.runners import logits
    from edgekd.runtime.stream import StreamRunner

    check_streamable(model, name)
    iface = export_stream_onnx(model, spec, stage / STREAM_FILE, student_name=name, opset=opset,
                               extra_metadata=extra_metadata)
    rep.done(f"{STREAM_FILE}: {iface['nodes']} nodes, input frame 3x{spec.size}x{spec.size} + "
             f"{len(iface['state'])} state buffers, logits for every frame")
    entries = []
    files: list[tuple[str, str, dict[str, Any]]] = [(STREAM_FILE, "fp32", {})]
    if fp16:
        from edgekd.export.fp16 import convert_fp16

        files.append((STREAM_FP16_FILE, "fp16", {"conversion": convert_fp16(stage / STREAM_FILE,
                                                                            stage / STREAM_FP16_FILE)}))
    if calib is not None:
        from edgekd.export.qdq import TRT_EMULATION, QdqSettings, quantize_qdq

        st = int8_settings
        # "auto" picks a method by comparing whole-clip outputs of one-input models; the stream takes
        # frames plus state, so it uses minmax unless a method is named
        method = "minmax" if st is None or st.method == "auto" else st.method
        q = quantize_qdq(stage / STREAM_FILE, stage / STREAM_INT8_FILE, stateful_feeds(stage / STREAM_FILE, calib.x),
                         QdqSettings(method=method, percentile=st.percentile if st else 99.999,
                                     calibration_clips=st.calibration_clips if st else 32), input_name=FRAME_INPUT)
        q["calibration"] = f"stateful: every frame of {len(calib)} {calib.split} clips with the state before it"
        files.append((STREAM_INT8_FILE, "int8", {"quantization": q, "graph_optimization": TRT_EMULATION}))
    clip_onnx_logits = logits(clip_onnx, cmp.clips, cmp.batch_size)
    for file, precision, extra in files:
        opt = {"graph_optimization": extra.pop("graph_optimization")} if "graph_optimization" in extra else {}
        with StreamRunner(stage / file, "cpu", precision, **opt) as runner:
            # the FP32 stream is the contract and must pass; FP16/INT8 copies that fail are dropped,
            # as the clip export drops a failing FP16 file
            par = cmp.judge(runner, f"{file} (frame by frame, mean over {spec.frames} frames)", tol[precision],
                            raise_on_fail=precision == "fp32")
            par["vs_clip_onnx"] = compare(clip_onnx_logits, logits(runner, cmp.clips, cmp.batch_size))
        if not par["passed"]:
            (stage / file).unlink()
            rep.warn(f"{file} dropped: " + "; ".join(par["failures"]) + f" ({precision} is not accurate enough "
                     "for this student)")
            continue
        par["protocol"] = f"mean of per-frame logits over the clip's {spec.frames} frames from zero state"
        c, o = par["clips"], par["vs_clip_onnx"]
        rep.done(f"parity {file} (frame by frame{', TensorRT int8 arithmetic' if opt else ''}) vs PyTorch clip model on {c['n']} clips: max |Δ| "
                 f"{c['max_abs']:.2e}, cosine ≥ {c['cosine_min']:.5f}; vs {FILES['onnx']} max |Δ| {o['max_abs']:.2e}")
        entries.append(file_entry(stage, file, fmt="onnx", precision=precision, runtime="onnxruntime",
                                  streaming=True, opset=opset, parity=par, interface=iface, **extra,
                                  input={"name": FRAME_INPUT, "shape": iface["frame"]["shape"]}))
    return entries


def triton_stream_model(export_dir: Path, *, spec, name: str, iface: dict[str, Any], max_batch: int,
                        idle_us: int = 5_000_000) -> dict[str, Any]:
    """triton/model_repository/NAME_stream/: the streaming ONNX with Triton's implicit state.

    sequence_batching with one `state` per buffer: Triton feeds request i's state_out_K to request
    i+1 of the same sequence (correlation ID) as state_in_K, and zeros at a sequence's start, so
    clients send only `frame`. The direct strategy gives each live sequence its own batch slot:
    max_batch_size streams per model instance.
    """
    import shutil

    from edgekd.export.triton import BUNDLE, LABELS, ModelConfig, Tensor, render
    from edgekd.io import write_text_atomic

    def dims(shape) -> str:
        return ", ".join(str(d) for d in shape[1:])  # without the batch axis (max_batch_size > 0)

    states = "\n".join(
        f"""  state [
    {{
      input_name: "{s['input']}"
      output_name: "{s['output']}"
      data_type: TYPE_FP32
      dims: [ {dims(s['shape'])} ]
      initial_state {{
        name: "zeros"
        data_type: TYPE_FP32
        dims: [ {dims(s['shape'])} ]
        zero_data: true
      }}
    }}
  ]""" for s in iface["state"])
    block = f"sequence_batching {{\n  max_sequence_idle_microseconds: {idle_us}\n  direct {{ }}\n{states}\n}}"
    model = "".join(c if c.isalnum() or c in "_-" else "_" for c in name) + "_stream"
    cfg = ModelConfig(name=model, platform="onnxruntime_onnx", max_batch_size=max_batch,
                      inputs=(Tensor(FRAME_INPUT, (3, spec.size, spec.size)),),
                      outputs=(Tensor("logits", (spec.num_classes,), label_filename=LABELS),),
                      dynamic_batching=False, extra_blocks=(block,))
    d = export_dir / BUNDLE / "model_repository" / model
    (d / "1").mkdir(parents=True, exist_ok=True)
    write_text_atomic(d / "config.pbtxt", render(cfg))
    write_text_atomic(d / LABELS, "\n".join(spec.class_names) + "\n")
    shutil.copyfile(export_dir / STREAM_FILE, d / "1" / "model.onnx")
    return {"model": model, "platform": "onnxruntime_onnx", "source": STREAM_FILE, "state": len(iface["state"]),
            "config": str((d / "config.pbtxt").relative_to(export_dir)),
            "client": "send `frame` with sequence_id (and sequence_start on a stream's first frame); "
                      "the state stays on the server"}
