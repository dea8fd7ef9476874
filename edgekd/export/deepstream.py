"""A DeepStream bundle for the 3D action-recognition pipeline (deepstream-3d-action-recognition).

    export/deepstream/
      model.onnx                               student.onnx + Softmax: output "probs" (network-mode 0 / 2)
      model.int8.onnx                          student.int8.onnx + Softmax (network-mode 1, explicit Q/DQ)
      labels.txt                               ONE line: the class names ';'-separated (nvinfer's classifier format)
      build_engine.sh                          INT8 only: trtexec --int8 builds the engine nvinfer loads
      config_preprocess_3d_custom.txt          nvdspreprocess: clips of T frames per source, NCDHW
      config_infer_primary_3d_action.txt       nvinfer: classifier fed by the preprocess tensor
      deepstream_action_recognition_config.txt the sample app's own config (streams, the two above)
      README.md                                the run command and the sources of these choices

nvinfer facts this rests on (DeepStream SDK sources, libs/nvdsinfer: nvdsinfer_model_builder.cpp,
nvdsinfer_context_impl.cpp; cited in the bundle README): a classifier's labelfile holds one line per
output layer with that layer's labels separated by ';'; with network-mode=1 and no int8-calib-file
the builder logs "INT8 calibration file not specified. Trying FP16 mode." and never sets TensorRT's
INT8 flag, which an explicit Q/DQ ONNX needs - so the INT8 engine is built with trtexec --int8 on the
target and named in model-engine-file; an engine nvinfer builds itself is saved as
<model file>_b<batch>_gpu<id>_<fp32|int8|fp16>.engine beside the model.

Pipeline (NVIDIA's sample): nvstreammux -> nvdspreprocess (libnvds_custom_sequence_preprocess
gathers frames into sequences per source, normalizes, batches) -> nvinfer -> tiler -> osd.
The student takes (N, 3, T, S, S) normalized as (x/255 - mean) / std; the custom library computes
(pixel - offset) * scale on 0-255 pixels, so offset = 255 * mean and scale = 1 / (255 * std).
nvinfer's classifier parser reads probabilities, hence the Softmax appended to the graph.
Key names and values follow ../shared/notes/deploy-conventions.md (the sample's config files).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekd.errors import ExportError
from edgekd.runtime.artifact import FILES

BUNDLE = FILES["deepstream"]
BUILD_SCRIPT = FILES["build-script"]  # INT8 only: builds the engine nvinfer loads
OUTPUT = "probs"
NETWORK_MODE = {"fp32": 0, "int8": 1, "fp16": 2}   # nvinfer network-mode
GIE_ID = 1                                         # nvinfer gie-unique-id == nvdspreprocess target-unique-ids
DS_LIB = "/opt/nvidia/deepstream/deepstream/lib"   # where DeepStream installs its libraries (on the target)
SAMPLE_STREAM = "file:///opt/nvidia/deepstream/deepstream/samples/streams/sample_1080p_h264.mp4"
APP = "deepstream-3d-action-recognition"
PREPROCESS, INFER, APP_CONFIG = ("config_preprocess_3d_custom.txt", "config_infer_primary_3d_action.txt",
                                 "deepstream_action_recognition_config.txt")


@dataclass(frozen=True)
class Normalization:
    """DeepStream's per-channel (pixel - offset) * scale, pixels 0-255, from a student's mean/std on [0, 1]."""

    offsets: tuple[float, ...]
    scales: tuple[float, ...]

    @classmethod
    def from_mean_std(cls, mean, std) -> "Normalization":
        return cls(tuple(255.0 * m for m in mean), tuple(1.0 / (255.0 * s) for s in std))


def _num(v: float) -> str:
    return f"{v:.6g}"


def render_ini(sections: dict[str, dict[str, Any]], header: str = "") -> str:
    """GKeyFile text (what DeepStream parses): [section] then key=value lines."""
    lines = [f"# {h}" for h in header.splitlines()] if header else []
    for name, keys in sections.items():
        lines += ([""] if lines else []) + [f"[{name}]"] + [f"{k}={v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def parse_ini(text: str) -> dict[str, dict[str, str]]:
    """The inverse of render_ini (comments and blank lines skipped)."""
    out: dict[str, dict[str, str]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
        elif section is not None and "=" in line:
            k, v = line.split("=", 1)
            section[k.strip()] = v.strip()
    return out


MUXER = (1280, 720)                                # nvstreammux width, height in the app config


def eval_roi(spec, width: int, height: int, decode_short_side: int | None = None) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the frame region evaluation sees: the centre crop of `size` after
    the short side is resized to the decode size (the ONNX metadata's preprocess.decode.short_side),
    mapped back to frame pixels; nvdspreprocess then scales the ROI to size x size - the same resize +
    crop, done in one step."""
    side = round(min(width, height) * spec.size / (decode_short_side or spec.size))
    return (width - side) // 2, (height - side) // 2, side, side


def preprocess_config(spec, *, max_batch: int, input_name: str, stride: int = 1, frame: tuple[int, int] = MUXER,
                      decode_short_side: int | None = None) -> dict[str, dict[str, Any]]:
    norm = Normalization.from_mean_std(spec.mean, spec.std)
    roi = ";".join(str(v) for v in eval_roi(spec, *frame, decode_short_side))
    return {
        "property": {
            "enable": 1, "target-unique-ids": GIE_ID, "process-on-frame": 1,
            # NCDHW: batch;channels;frames;height;width (network-input-order=2 is the custom library's order)
            "network-input-shape": f"{max_batch};3;{spec.frames};{spec.size};{spec.size}",
            "network-color-format": 0, "network-input-order": 2, "tensor-data-type": 0, "tensor-name": input_name,
            "processing-width": spec.size, "processing-height": spec.size,
            "scaling-pool-memory-type": 0, "scaling-pool-compute-hw": 0, "scaling-filter": 1,
            "tensor-buf-pool-size": 8,
            "custom-lib-path": f"{DS_LIB}/libnvds_custom_sequence_preprocess.so",
            "custom-tensor-preparation-function": "CustomSequenceTensorPreparation",
        },
        "user-configs": {
            "channel-scale-factors": ";".join(_num(s) for s in norm.scales),
            "channel-mean-offsets": ";".join(_num(o) for o in norm.offsets),
            "stride": stride,                                # window slides this many (subsampled) frames
            "subsample": max(0, int(spec.frame_stride) - 1),  # frames skipped between kept frames
        },
        # the evaluation crop of every source (the whole frame squashed to a square is not what the student saw)
        "group-0": {"src-ids": ";".join(str(i) for i in range(max_batch)), "process-on-roi": 1,
                    **{f"roi-params-src-{i}": roi for i in range(max_batch)}},
    }


def engine_name(onnx_file: str, precision: str, max_batch: int) -> str:
    """The name nvinfer saves an engine it builds under (nvdsinfer_model_builder.cpp: model path + "_b" +
    max batch + "_gpu0_" + network mode): found again on the next run instead of rebuilt."""
    return f"{onnx_file}_b{max_batch}_gpu0_{precision}.engine"


def infer_config(*, onnx_file: str, precision: str, max_batch: int) -> dict[str, dict[str, Any]]:
    engine = engine_name(onnx_file, precision, max_batch)
    return {"property": {
        "gpu-id": 0, "onnx-file": onnx_file, "model-engine-file": engine, "labelfile-path": "labels.txt",
        "batch-size": max_batch, "process-mode": 1, "input-tensor-from-meta": 1,
        "network-mode": NETWORK_MODE[precision], "gie-unique-id": GIE_ID, "network-type": 1,
        "output-tensor-meta": 1, "tensor-meta-pool-size": 8,
    }}


def app_config(*, max_batch: int) -> dict[str, dict[str, Any]]:
    return {APP.removeprefix("deepstream-3d-"): {
        "uri-list": ";".join([SAMPLE_STREAM] * max_batch), "display-sync": 0,
        "preprocess-config": PREPROCESS, "infer-config": INFER,
        "muxer-height": 720, "muxer-width": 1280, "muxer-batch-timeout": 40000,
        "tiler-height": 720, "tiler-width": 1280, "fakesink": 1, "debug": 0, "enable-fps": 1,
    }}


def with_softmax(src: Path, dst: Path) -> None:
    """Copy of `src` whose single output is Softmax(logits, axis=1) named "probs"."""
    import onnx
    from onnx import helper

    from edgekd.io import atomic_path

    m = onnx.load(str(src))
    logits = m.graph.output[0]
    m.graph.node.append(helper.make_node("Softmax", [logits.name], [OUTPUT], name="edgekd_softmax", axis=1))
    probs = onnx.ValueInfoProto()
    probs.CopyFrom(logits)
    probs.name = OUTPUT
    del m.graph.output[:]
    m.graph.output.append(probs)
    onnx.checker.check_model(m)
    with atomic_path(dst) as t:
        onnx.save(m, str(t))


def _check_softmax(src: Path, dst: Path, x) -> float:
    """max |softmax(src(x)) - dst(x)|: the appended Softmax changed nothing but the output's scale."""
    import numpy as np

    from edgekd.runtime.metrics import softmax
    from edgekd.runtime.runners import OrtRunner

    with OrtRunner(src, "cpu", "fp32", graph_optimization="disable") as a, \
            OrtRunner(dst, "cpu", "fp32", graph_optimization="disable") as b:
        return float(np.abs(softmax(a.run(x)) - b.run(x)).max())


def write_bundle(export_dir: Path, *, spec, name: str, precision: str = "fp16", max_batch: int = 4,
                 input_name: str = "video", stride: int = 1, decode_short_side: int | None = None) -> dict[str, Any]:
    """Write export_dir/deepstream/ from the export's ONNX files; returns its artifact.json record."""
    import numpy as np

    from edgekd.io import write_text_atomic

    src = export_dir / (FILES["int8"] if precision == "int8" else FILES["onnx"])
    if not src.is_file():
        raise ExportError(f"the DeepStream bundle for {precision} needs {src.name}, which this export lacks",
                          "drop --no-quantize for INT8, or pass --fp16 for an FP16 DeepStream engine")
    out = export_dir / BUNDLE
    out.mkdir(exist_ok=True)
    onnx_file = "model.int8.onnx" if precision == "int8" else "model.onnx"
    with_softmax(src, out / onnx_file)
    probe = np.random.default_rng(0).standard_normal((2, *spec.input_shape(1)[1:]), dtype=np.float32)
    softmax_err = _check_softmax(src, out / onnx_file, probe)
    if softmax_err > 1e-5:
        raise ExportError(f"{BUNDLE}/{onnx_file} does not equal softmax(student logits): max |Δ| {softmax_err:.2e}",
                          "report the student; the appended Softmax node is wrong")
    # one output layer -> one line, its labels ';'-separated (nvinfer's classifier label format)
    write_text_atomic(out / "labels.txt", ";".join(spec.class_names) + "\n")
    head = f"edgekd {name}: {spec.frames}x{spec.size}x{spec.size} clips, {spec.num_classes} classes, {precision}"
    write_text_atomic(out / PREPROCESS, render_ini(preprocess_config(spec, max_batch=max_batch, input_name=input_name,
                                                                     stride=stride, decode_short_side=decode_short_side),
                                                   head))
    write_text_atomic(out / INFER, render_ini(infer_config(onnx_file=onnx_file, precision=precision,
                                                           max_batch=max_batch), head))
    write_text_atomic(out / APP_CONFIG, render_ini(app_config(max_batch=max_batch), head))
    run = f"{APP} -c {APP_CONFIG}"
    if precision == "int8":
        script = out / BUILD_SCRIPT
        write_text_atomic(script, _build_script(onnx_file, input_name, spec, max_batch))
        script.chmod(0o755)
        run = f"bash {BUILD_SCRIPT} && {run}"
    write_text_atomic(out / "README.md", _readme(name, spec, precision, max_batch, onnx_file, run,
                                                 decode_short_side or spec.size))
    return {"folder": BUNDLE, "files": sorted(p.name for p in out.iterdir()), "onnx": onnx_file,
            "engine": engine_name(onnx_file, precision, max_batch),
            "precision": precision, "network_mode": NETWORK_MODE[precision], "max_batch": max_batch,
            "softmax_check_max_abs": softmax_err, "run": f"cd {BUNDLE} && {run}"}


def _build_script(onnx_file: str, input_name: str, spec, max_batch: int) -> str:
    """trtexec --int8 for the explicit Q/DQ ONNX, shapes 1..max_batch, saved under nvinfer's engine name."""
    shape = f"3x{spec.frames}x{spec.size}x{spec.size}"
    engine = engine_name(onnx_file, "int8", max_batch)
    return "\n".join([
        "#!/usr/bin/env bash",
        "# Build the INT8 engine on the target: nvinfer alone would build FP16 from a Q/DQ ONNX (no calibration file).",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        'TRTEXEC="${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}"',
        f'"$TRTEXEC" --onnx={onnx_file} --int8 --fp16 --minShapes={input_name}:1x{shape} '
        f'--optShapes={input_name}:{max_batch}x{shape} --maxShapes={input_name}:{max_batch}x{shape} '
        f'--saveEngine={engine}',
        f'echo "built {engine}"',
    ]) + "\n"


def _readme(name: str, spec, precision: str, max_batch: int, onnx_file: str, run: str, decode: int) -> str:
    norm = Normalization.from_mean_std(spec.mean, spec.std)
    engine = engine_name(onnx_file, precision, max_batch)
    left, top, w, h = eval_roi(spec, *MUXER, decode)
    if precision == "int8":
        build = f"""- `{onnx_file}` is the explicit Q/DQ INT8 graph. nvinfer cannot build it as INT8 by itself: with
  `network-mode=1` and no `int8-calib-file` it logs "INT8 calibration file not specified. Trying FP16
  mode." and builds FP16 (DeepStream SDK sources, `libs/nvdsinfer/nvdsinfer_model_builder.cpp`,
  `TrtModelBuilder`; TensorRT issue #4021: an explicit Q/DQ ONNX needs the INT8 builder flag, "for explicit
  Q-DQ onnx, you must at least set --int8"). `{BUILD_SCRIPT}` runs `trtexec --int8 --fp16` on the target
  and saves `{engine}`, the file `model-engine-file` names, so nvinfer deserializes it and builds nothing."""
    else:
        build = f"""- `{onnx_file}`: nvinfer builds a {precision} engine on first run (network-mode {NETWORK_MODE[precision]})
  and saves it as `{engine}` (nvinfer's own name: model + `_b<batch>_gpu<id>_<mode>.engine`,
  `nvdsinfer_model_builder.cpp`), the file `model-engine-file` names, so later runs load it.
  For INT8, re-export with `--deepstream --trt --int8` (the explicit Q/DQ graph, built by `{BUILD_SCRIPT}`)."""
    return f"""# {name} for DeepStream (3D action recognition)

Run on the target (DeepStream 6.3 or 7.x with its `{APP}` sample app built):

    cd {BUNDLE}
    {run}

Replace `uri-list` in `{APP_CONFIG}` with your streams (one per batch slot, {max_batch} here).

{build}
- Output `{OUTPUT}`: softmax over {spec.num_classes} classes. `labels.txt` is one line, the class names
  separated by `;`: nvinfer's classifier reads each line as the labels of one output layer
  (`nvdsinfer_context_impl.cpp`, the label file parser; DeepStream's secondary-classifier samples ship
  one-line label files).
- Input: {max_batch} x 3 x {spec.frames} x {spec.size} x {spec.size} (NCDHW), RGB, every
  {spec.frame_stride} frame(s); normalization (pixel - offset) * scale with offsets
  {', '.join(_num(o) for o in norm.offsets)} and scales {', '.join(_num(s) for s in norm.scales)}
  (the student's mean {list(spec.mean)} and std {list(spec.std)} on [0, 1] pixels).
- Crop: nvdspreprocess takes the ROI left {left}, top {top}, {w} x {h} of each {MUXER[0]}x{MUXER[1]} muxer
  frame and scales it to {spec.size}x{spec.size}: the centre crop evaluation used (short side resized to
  {decode} px, centre {spec.size} px). Change `roi-params-src-N` if you change the muxer size.
"""
