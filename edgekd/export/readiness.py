"""Will this ONNX graph build with TensorRT on a target, and what would run on its DLA? (no TensorRT needed)

Every node is checked against the ONNX operators TensorRT's ONNX parser supports at the profile's
TensorRT version, and - when the profile has DLA cores - against the DLA layer limits. The result
says per operator type what runs on the GPU, what runs on DLA, what falls back from DLA to the GPU,
and what fails to build, with a suggestion where one helps.

Sources (transcribed, not guessed):
  * TensorRT ONNX parser operator matrix: onnx/onnx-tensorrt `docs/operators.md` at the 8.4, 8.5
    and 10.15 releases ("TensorRT 8.4 supports operators up to Opset 13", "8.5/8.6 ... up to Opset
    17", "10.0 ... opset 9 to opset 20", "10.15 ... opset 9 to opset 24"); TensorRT 8.2 is also
    "up to Opset 13".
  * DLA: NVIDIA TensorRT developer guide, "DLA Supported Layers and Restrictions": FP16/INT8 only;
    max batch 4096, non-batch dims <= 8192; no dynamic dimensions (min = opt = max); convolution,
    deconvolution, pooling, activation and elementwise layers are 2D only; convolution kernel
    [1, 32], stride [1, 8], channels [1, 8192]; pooling window [1, 8]; activations ReLU, Sigmoid,
    TanH, Clipped ReLU, Leaky ReLU (HARD_SIGMOID is reported "not supported on DLA" by the
    builder); concatenation on the channel axis only; at most 16 DLA loadables per core.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.errors import ConfigError, ExportError
from edgekd.runtime.artifact import FILES

# -- TensorRT ONNX parser support ----------------------------------------------------------------

# Supported ("Y") rows of onnx-tensorrt docs/operators.md, release 8.4 (8.2 has the same opset cap).
TRT_OPS_8_4 = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil
Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace
DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GRU
HardSigmoid Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log
LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean Min Mul Neg
NonMaxSuppression Not Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomUniform
RandomUniformLike Range ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin
ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN Round ScaledTanh Scan
Scatter ScatterElements ScatterND Selu Shape Sigmoid Sign Sin Sinh Size Slice Softmax Softplus
Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose
Unsqueeze Upsample Where Xor
""".split())
# Rows that turn "Y" at release 8.5 (also 8.6).
TRT_OPS_8_5 = TRT_OPS_8_4 | frozenset("""
GridSample HardSwish MeanVarianceNormalization Mod NonZero OneHot RandomNormal RandomNormalLike
Reciprocal RoiAlign Shrink Trilu
""".split())
# Rows that turn "Y" by release 10.15 (the opset range keeps opset-23/24-only ops out of older 10.x).
TRT_OPS_10 = TRT_OPS_8_5 | frozenset("""
Attention BlackmanWindow CastLike DeformConv Gelu GroupNormalization HammingWindow HannWindow Hardmax
IsInf LayerNormalization Mish RMSNormalization RotaryEmbedding STFT TensorScatter
""".split())


@dataclass(frozen=True)
class TrtRelease:
    label: str
    ops: frozenset[str]
    min_opset: int
    max_opset: int


def trt_release(version: str) -> TrtRelease:
    """The support table for a profile's TensorRT version string ("8.5.2", "10.3", "10.x")."""
    m = re.match(r"^\s*(\d+)(?:\.(\d+|x))?", str(version or ""))
    if not m:
        raise ConfigError(f"cannot read TensorRT version {version!r}", "write it as e.g. \"10.3\" or \"8.5.2\"")
    major = int(m[1])
    minor = int(m[2]) if m[2] and m[2] != "x" else 0  # "10.x" = any 10.x: judge by the oldest
    if major >= 10:
        return TrtRelease(f"TensorRT {version}", TRT_OPS_10, 9, 24 if minor >= 15 else 20)
    if major == 8 and minor >= 5:
        return TrtRelease(f"TensorRT {version}", TRT_OPS_8_5, 1, 17)
    if major == 8:
        return TrtRelease(f"TensorRT {version}", TRT_OPS_8_4, 1, 13)
    raise ConfigError(f"TensorRT {version} is older than edgekd supports", "target TensorRT 8.2 or newer")


# -- DLA -----------------------------------------------------------------------------------------

DLA_ACTIVATIONS = {"Relu", "Sigmoid", "Tanh", "Clip", "LeakyRelu", "PRelu"}
DLA_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"}
DLA_SHUFFLE = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze"}
# No layer at build time: folded into constants / weights or removed by TensorRT.
NO_LAYER = {"Constant", "Identity", "Dropout", "Shape", "ConstantOfShape", "Cast", "Range"}
DLA_MAX_DIM, DLA_MAX_BATCH, DLA_MAX_LOADABLES = 8192, 4096, 16


@dataclass
class NodeCheck:
    name: str
    op: str
    trt: str = "ok"           # "ok" | "fail"
    trt_note: str = ""
    dla: str = ""             # "dla" | "gpu" (fallback) | "" (no DLA on the target / no layer)
    dla_note: str = ""


@dataclass
class Readiness:
    onnx: str
    profile: str
    device: str
    tensorrt: str
    opset: int
    precision: str
    dla_cores: int
    nodes: list[NodeCheck]
    trt_ok: bool
    trt_problems: list[str] = field(default_factory=list)
    dla_verdict: str = "n/a"  # "n/a" | "dla" | "dla+gpu" | "fail"
    dla_problems: list[str] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)

    @property
    def dla_ok(self) -> bool:
        return self.dla_verdict in ("dla", "dla+gpu")

    def rows(self) -> list[dict[str, Any]]:
        """One row per operator type: count, TensorRT status, DLA placement, notes."""
        out: dict[str, dict[str, Any]] = {}
        for n in self.nodes:
            r = out.setdefault(n.op, {"op": n.op, "count": 0, "trt_fail": 0, "dla": 0, "gpu": 0, "notes": []})
            r["count"] += 1
            r["trt_fail"] += n.trt == "fail"
            r["dla"] += n.dla == "dla"
            r["gpu"] += n.dla == "gpu"
            for note in (n.trt_note, n.dla_note):
                if note and note not in r["notes"]:
                    r["notes"].append(note)
        return sorted(out.values(), key=lambda r: (-r["trt_fail"], -r["gpu"], r["op"]))

    def to_dict(self) -> dict[str, Any]:
        return {"onnx": self.onnx, "profile": self.profile, "device": self.device, "tensorrt": self.tensorrt,
                "opset": self.opset, "precision": self.precision, "dla_cores": self.dla_cores,
                "trt_ok": self.trt_ok, "trt_problems": self.trt_problems, "dla_verdict": self.dla_verdict,
                "dla_problems": self.dla_problems, "suggestions": self.suggestions, "operators": self.rows()}


def _attr(node, name: str, default=None):
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


class _Graph:
    """Static facts about tensors: constant-ness and (inferred) shapes."""

    def __init__(self, model):
        import onnx

        try:
            model = onnx.shape_inference.infer_shapes(model, data_prop=True)
        except Exception:  # noqa: BLE001 - readiness still works without shapes, with fewer checks
            pass
        g = model.graph
        self.consts = {i.name for i in g.initializer} | {o for n in g.node if n.op_type == "Constant" for o in n.output}
        self.shapes: dict[str, list[int | str]] = {}
        self.dtypes: dict[str, int] = {}
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            if vi.type.HasField("tensor_type"):
                self.dtypes[vi.name] = vi.type.tensor_type.elem_type
                if vi.type.tensor_type.HasField("shape"):
                    self.shapes[vi.name] = [d.dim_param or d.dim_value or "?" for d in vi.type.tensor_type.shape.dim]
        self.weights = {i.name: list(i.dims) for i in g.initializer}
        self.producers = {o: n for n in g.node for o in n.output}

    def weight(self, name: str) -> str | None:
        """The constant behind a layer's weight input: the tensor itself, or - explicit quantization -
        the int8 (or float) constant a DequantizeLinear (after a QuantizeLinear, as Model Optimizer
        writes it) reads; None when the weights are computed at run time."""
        for _ in range(2):
            if name in self.consts:
                return name
            n = self.producers.get(name)
            if n is None or n.op_type not in ("DequantizeLinear", "QuantizeLinear"):
                return None
            name = n.input[0]
        return name if name in self.consts else None

    def is_shape_math(self, node) -> bool:
        """Integer outputs: shape arithmetic for reshapes (dynamic batch), not a tensor layer."""
        import onnx

        ints = (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
        return bool(node.output) and all(self.dtypes.get(o) in ints for o in node.output if o)

    def rank(self, name: str) -> int | None:
        s = self.shapes.get(name)
        return len(s) if s is not None else None


def _trt_check(node, g: _Graph, rel: TrtRelease) -> tuple[str, str]:
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        return "fail", f"custom-domain op {node.domain}::{op} needs a TensorRT plugin"
    if op not in rel.ops:
        return "fail", f"not supported by the {rel.label} ONNX parser"
    if op in ("Conv", "ConvTranspose"):
        w = g.weight(node.input[1] if len(node.input) > 1 else "")
        if w is None:
            return "fail", "weights W must be an initializer (or a DequantizeLinear of one)"
        k = len(g.weights.get(w, [0, 0, 0, 0])) - 2
        if k not in (1, 2, 3):
            return "fail", f"{k}D convolution (TensorRT takes 2D/3D)"
    if op in ("MaxPool", "AveragePool", "LpPool"):
        k = len(_attr(node, "kernel_shape", []) or [])
        if k not in (2, 3):
            return "fail", f"{k}D pooling (TensorRT takes 2D/3D)"
        if any(d != 1 for d in (_attr(node, "dilations", []) or [])):
            return "fail", "pooling dilations must be 1"
        if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
            return "fail", "MaxPool Indices output is unsupported"
    if op == "Resize":
        mode = _attr(node, "mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode not in ("nearest", "linear"):
            return "fail", f"Resize mode {mode!r} (TensorRT: nearest, linear)"
        if _attr(node, "antialias", 0):
            return "fail", "Resize antialiasing is unsupported"
    if op in ("Slice", "Squeeze", "Unsqueeze", "CumSum", "TopK") or (op.startswith("Reduce") and len(node.input) > 1):
        axes_input = {"Slice": 3, "CumSum": 1, "TopK": 1}.get(op, 1)
        if len(node.input) > axes_input and node.input[axes_input] and node.input[axes_input] not in g.consts:
            return "fail", "axes/K must be a build-time constant"
    return "ok", ""


def _dla_check(node, g: _Graph) -> tuple[str, str]:
    """('dla' | 'gpu' | '', note) for one node on a DLA core."""
    op = node.op_type
    if op in NO_LAYER or g.is_shape_math(node):
        return "", ""
    x = node.input[0] if node.input else ""
    rank = g.rank(x)
    if rank is not None and rank > 4 and op not in ("Conv", "MaxPool", "AveragePool"):
        return "gpu", f"DLA layers are 2D (4D tensors); this one is {rank}D"
    if op in ("Conv", "ConvTranspose"):
        w = g.weights.get(g.weight(node.input[1]) or "", [])
        if len(w) != 4:
            return "gpu", f"DLA runs only 2D convolutions; this is {len(w) - 2}D" if w else "weights unknown"
        kernel, strides = w[2:], _attr(node, "strides", [1, 1]) or [1, 1]
        if any(not 1 <= k <= 32 for k in kernel) or any(not 1 <= s <= 8 for s in strides):
            return "gpu", "DLA convolution needs kernel 1-32, stride 1-8"
        if max(w[0], w[1] * (_attr(node, "group", 1) or 1)) > DLA_MAX_DIM:
            return "gpu", "DLA convolution takes at most 8192 channels"
        if op == "ConvTranspose" and ((_attr(node, "group", 1) or 1) > 1 or any(p for p in (_attr(node, "pads", []) or []))):
            return "gpu", "DLA deconvolution: no groups, zero padding"
        return "dla", ""
    if op in ("MaxPool", "AveragePool"):
        kernel = _attr(node, "kernel_shape", []) or []
        if len(kernel) != 2:
            return "gpu", f"DLA pools in 2D only; this is {len(kernel)}D"
        if any(not 1 <= k <= 8 for k in kernel):
            return "gpu", "DLA pooling window must be 1-8"
        return "dla", ""
    if op in ("GlobalAveragePool", "GlobalMaxPool") or op.startswith("Reduce"):
        return "gpu", "reductions (incl. global pooling) are not DLA layers"
    if op in DLA_ACTIVATIONS or op == "BatchNormalization":
        return "dla", ""
    if op in ("HardSigmoid", "HardSwish"):
        return "gpu", "HARD_SIGMOID is not a DLA activation"
    if op in DLA_ELEMENTWISE:
        return "dla", ""
    if op in ("Gemm", "MatMul"):
        return ("dla", "") if len(node.input) > 1 and g.weight(node.input[1]) else ("gpu", "DLA needs constant weights")
    if op == "Concat":
        axis = _attr(node, "axis", 0)
        if rank is not None and axis % rank != 1:
            return "gpu", "DLA concatenates on the channel axis only"
        return "dla", ""
    if op in DLA_SHUFFLE or op in ("Slice", "Softmax", "Resize"):
        return "dla", ""
    return "gpu", f"{op} is not a DLA layer"


def _segments(nodes: list[NodeCheck]) -> int:
    """Number of contiguous DLA runs in topological order ~ DLA loadables with GPU fallback."""
    runs, prev = 0, None
    for n in nodes:
        if not n.dla:
            continue
        if n.dla == "dla" and prev != "dla":
            runs += 1
        prev = n.dla
    return runs


def check_readiness(onnx_path: str | Path, profile, precision: str = "fp16") -> Readiness:
    """Judge `onnx_path` for `profile` (a bench Profile, or a name/path load_profile accepts)."""
    import onnx

    from edgekd.runtime.profiles import load_profile

    profile = load_profile(profile)
    if not profile.tensorrt_version:
        raise ConfigError(f"profile {profile.name!r} ({profile.device}) has no TensorRT",
                          "pick a GPU or Jetson profile, e.g. --profile orin-nano-8gb-15w")
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ExportError(f"no ONNX model at {onnx_path}", "export first: edgekd export RUN")
    model = onnx.load(str(onnx_path))
    rel = trt_release(profile.tensorrt_version)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    g = _Graph(model)
    dla = profile.dla_cores > 0
    nodes = []
    for node in model.graph.node:
        c = NodeCheck(node.name or node.op_type, node.op_type)
        c.trt, c.trt_note = _trt_check(node, g, rel)
        if dla:
            c.dla, c.dla_note = _dla_check(node, g)
        nodes.append(c)

    r = Readiness(onnx=str(onnx_path), profile=profile.name, device=profile.device, tensorrt=rel.label,
                  opset=opset, precision=precision, dla_cores=profile.dla_cores, nodes=nodes, trt_ok=True)
    if not rel.min_opset <= opset <= rel.max_opset:
        r.trt_problems.append(f"opset {opset} is outside {rel.label}'s range {rel.min_opset}-{rel.max_opset}")
        r.suggestions.append(f"re-export with --opset {min(max(opset, rel.min_opset), rel.max_opset, 17)}")
    bad = [n for n in nodes if n.trt == "fail"]
    for op in sorted({n.op for n in bad}):
        notes = sorted({n.trt_note for n in bad if n.op == op})
        r.trt_problems.append(f"{op}: " + "; ".join(notes))
    r.trt_ok = not r.trt_problems
    if bad:
        r.suggestions.append("replace the failing operators in the student (or try another --opset); "
                             "a TensorRT plugin is the last resort")
    if dla:
        _judge_dla(r, g, model, profile)
    return r


def _judge_dla(r: Readiness, g: _Graph, model, profile) -> None:
    convs = [n for n in r.nodes if n.op in ("Conv", "ConvTranspose")]
    on_dla = [n for n in convs if n.dla == "dla"]
    fallback = [n for n in r.nodes if n.dla == "gpu"]
    blocking: list[str] = []  # DLA cannot help at all
    if r.precision not in ("fp16", "int8"):
        blocking.append(f"DLA runs FP16 or INT8 only, not {r.precision}")
    if convs and not on_dla:
        blocking.append(f"none of the {len(convs)} convolutions can run on DLA "
                        f"({convs[0].dla_note}): the whole network would run on the GPU")
        r.suggestions.append("for DLA, use a temporal-shift 2D student such as mobilenet_v3_small_tsm "
                             "(edgekd distill --student mobilenet_v3_small_tsm): 2D convolutions + shifts, DLA-friendly")
    inp = model.graph.input[0]
    dims = g.shapes.get(inp.name, [])
    frames = dims[2] if len(dims) == 5 and isinstance(dims[2], int) else 1
    worst = max(profile.batch_sizes) * frames
    if worst > DLA_MAX_BATCH:
        blocking.append(f"batch {max(profile.batch_sizes)} x {frames} frames = {worst} > DLA's {DLA_MAX_BATCH}")
    if any(isinstance(d, int) and d > DLA_MAX_DIM for d in dims[1:]):
        blocking.append(f"an input dimension exceeds DLA's {DLA_MAX_DIM}")
    r.dla_problems = list(blocking)
    if blocking:
        r.dla_verdict = "fail"
        return
    r.dla_verdict = "dla+gpu" if fallback else "dla"
    if len(on_dla) < len(convs):
        r.dla_problems.append(f"{len(convs) - len(on_dla)} of {len(convs)} convolutions fall back to the GPU")
    if fallback:
        ops = sorted({n.op for n in fallback})
        r.suggestions.append(f"on DLA, {len(fallback)} layers ({', '.join(ops)}) fall back to the GPU: "
                             "build with GPU fallback (--dla does); DLA needs a static batch, so the engine "
                             "is built at one batch size")
    segments = _segments(r.nodes)
    if segments > DLA_MAX_LOADABLES:
        r.suggestions.append(f"{segments} DLA segments (> {DLA_MAX_LOADABLES} loadables per core): "
                             "TensorRT will leave some of them on the GPU")


def render(r: Readiness):
    """A rich Table of operator types plus the verdict lines, for the CLI."""
    from rich.table import Table

    t = Table(title=f"TensorRT readiness: {Path(r.onnx).name} on {r.device} ({r.tensorrt}, opset {r.opset})",
              title_justify="left")
    t.add_column("operator")
    t.add_column("count", justify="right")
    t.add_column("TensorRT")
    if r.dla_cores:
        t.add_column(f"DLA ({r.dla_cores} cores)")
    t.add_column("notes", overflow="fold")
    for row in r.rows():
        trt = "[red]fails[/red]" if row["trt_fail"] else "[green]ok[/green]"
        cells = [row["op"], str(row["count"]), trt]
        if r.dla_cores:
            if row["dla"] and not row["gpu"]:
                cells.append("[green]DLA[/green]")
            elif row["gpu"] and not row["dla"]:
                cells.append("[yellow]falls back to GPU[/yellow]")
            elif row["gpu"]:
                cells.append(f"[yellow]{row['dla']} DLA / {row['gpu']} GPU[/yellow]")
            else:
                cells.append("[dim]-[/dim]")
        cells.append("; ".join(row["notes"]))
        t.add_row(*cells)
    return t


def verdict_lines(r: Readiness) -> list[str]:
    lines = [("[green]TensorRT: builds[/green]" if r.trt_ok else "[red]TensorRT: will not build[/red]")
             + (": " + "; ".join(r.trt_problems) if r.trt_problems else "")]
    if r.dla_cores:
        label = {"dla": "[green]DLA: runs entirely on DLA[/green]",
                 "dla+gpu": "[yellow]DLA: runs on DLA with GPU fallback[/yellow]",
                 "fail": "[red]DLA: not usable[/red]"}[r.dla_verdict]
        lines.append(label + (": " + "; ".join(r.dla_problems) if r.dla_problems else ""))
    lines += [f"[cyan]suggestion:[/cyan] {s}" for s in r.suggestions]
    return lines


def find_onnx(target: Path) -> Path | None:
    """An existing ONNX for the check: the file itself, an export folder, or a run's export/."""
    target = Path(target)
    if target.is_file() and target.suffix == ".onnx":
        return target
    for cand in (target / FILES["onnx"], target / "export" / FILES["onnx"]):
        if cand.is_file():
            return cand
    return None


def check_target(target: str | Path, profile, precision: str = "fp16", opset: int = 17,
                 require_dla: bool = False) -> Readiness:
    """Readiness of an ONNX file, export folder or run (its checkpoint exported just for the check).

    Raises ExportError when the graph will not build (or cannot use the DLA with `require_dla`),
    after the caller has had the Readiness to render: the error carries it as `.readiness`.
    """
    import tempfile

    onnx_path = find_onnx(Path(target))
    with tempfile.TemporaryDirectory(prefix="edgekd-check-") as tmp:
        if onnx_path is None:
            from edgekd.checkpoint import resolve_checkpoint_path
            from edgekd.export.onnx_export import export_onnx, load_student

            ckpt, model, spec = load_student(resolve_checkpoint_path(target))
            onnx_path = export_onnx(model, spec, Path(tmp) / FILES["onnx"], student_name=ckpt["student"]["name"],
                                    opset=opset).path
        r = check_readiness(onnx_path, profile, precision)
    r.onnx_name = onnx_path.name
    return r


def readiness_error(r: Readiness, require_dla: bool) -> ExportError | None:
    """The error to raise after showing `r`, or None when the graph is fine for the request."""
    name = getattr(r, "onnx_name", "the model")
    if not r.trt_ok:
        return ExportError(f"{name} will not build with {r.tensorrt} on {r.device}",
                           r.suggestions[0] if r.suggestions else "see the table above")
    if require_dla and r.dla_verdict == "fail":
        return ExportError(f"{name} cannot use the DLA of {r.device}",
                           next((s for s in r.suggestions if "DLA" in s), "see the table above"))
    return None
