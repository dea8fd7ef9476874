"""A Triton Inference Server model repository for the exported student.

    export/triton/
      model_repository/
        NAME_onnx/        config.pbtxt, labels.txt, 1/model.onnx   onnxruntime backend, FP32
        NAME_onnx_fp16/   config.pbtxt, labels.txt, 1/model.onnx   onnxruntime backend, FP16 inside, FP32 I/O
      on_target/
        NAME_trt/         config.pbtxt, labels.txt, 1/             tensorrt_plan: 1/model.plan built on the GPU
      build_plan.sh       copies NAME_trt into model_repository/ and builds its 1/model.plan with trtexec
      README.md           the tritonserver and perf_analyzer commands

The plan model waits in on_target/ because a model folder without its version file fails to load,
and tritonserver stops on the first model that fails (--exit-on-error defaults to true).

config.pbtxt is rendered from `ModelConfig` (a small dataclass): with max_batch_size > 0, dims
leave out the batch axis; dynamic batching and one GPU instance by default. Extend a model by
adding fields and a block in `render` (the streaming export adds sequence batching the same way).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgekd.errors import ExportError
from edgekd.runtime.artifact import FILES

BUNDLE = FILES["triton"]
LABELS = "labels.txt"


@dataclass(frozen=True)
class Tensor:
    name: str
    dims: tuple[int, ...]            # without the batch axis
    data_type: str = "TYPE_FP32"
    label_filename: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    name: str
    platform: str                    # "onnxruntime_onnx" | "tensorrt_plan"
    max_batch_size: int
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 100
    instance_kind: str = "KIND_GPU"
    instance_count: int = 1
    extra_blocks: tuple[str, ...] = field(default_factory=tuple)  # rendered verbatim (e.g. sequence_batching)
    dynamic_batching: bool = True    # off for a sequence-batched model (Triton takes one scheduler)


def _tensor(t: Tensor, indent: str = "  ") -> str:
    lines = [f'{indent}{{', f'{indent}  name: "{t.name}"', f"{indent}  data_type: {t.data_type}",
             f"{indent}  dims: [ {', '.join(str(d) for d in t.dims)} ]"]
    if t.label_filename:
        lines.append(f'{indent}  label_filename: "{t.label_filename}"')
    return "\n".join(lines + [f"{indent}}}"])


def render(cfg: ModelConfig) -> str:
    """config.pbtxt text (protobuf text format of inference.ModelConfig)."""
    parts = [f'name: "{cfg.name}"', f'platform: "{cfg.platform}"', f"max_batch_size: {cfg.max_batch_size}",
             "input [\n" + ",\n".join(_tensor(t) for t in cfg.inputs) + "\n]",
             "output [\n" + ",\n".join(_tensor(t) for t in cfg.outputs) + "\n]"]
    if cfg.max_batch_size > 0 and cfg.dynamic_batching:
        pref = "".join(f"\n  preferred_batch_size: {b}" for b in cfg.preferred_batch_sizes)
        parts.append(f"dynamic_batching {{{pref}\n  max_queue_delay_microseconds: {cfg.max_queue_delay_us}\n}}")
    parts.append(f"instance_group [\n  {{\n    kind: {cfg.instance_kind}\n    count: {cfg.instance_count}\n  }}\n]")
    parts += list(cfg.extra_blocks)
    return "\n".join(parts) + "\n"


def _preferred(max_batch: int) -> tuple[int, ...]:
    """Powers of two up to max_batch, and max_batch itself."""
    sizes, b = [], 1
    while b < max_batch:
        sizes.append(b)
        b *= 2
    return tuple(sizes[1:] + [max_batch]) if max_batch > 1 else ()


def student_config(name: str, platform: str, spec, *, max_batch: int, input_name: str, output_name: str) -> ModelConfig:
    return ModelConfig(
        name=name, platform=platform, max_batch_size=max_batch,
        inputs=(Tensor(input_name, (3, spec.frames, spec.size, spec.size)),),
        outputs=(Tensor(output_name, (spec.num_classes,), label_filename=LABELS),),
        preferred_batch_sizes=_preferred(max_batch))


def _script(model: str, onnx_rel: str, input_name: str, dims: tuple[int, ...], max_batch: int,
            preferred: tuple[int, ...] = ()) -> str:
    """build_plan.sh: the profile spans batch 1..max_batch and is tuned (opt) for the largest batch the
    dynamic batcher prefers; the model folder is copied from on_target/ (kept as the template), so the
    script can run again (another PRECISION, a new TensorRT) without moving anything of its own."""
    shape = "x".join(str(d) for d in dims)
    opt = max(preferred, default=max_batch)
    dest = f"model_repository/{model}"
    argv = [f"--saveEngine={dest}/1/model.plan.partial",
            f"--minShapes={input_name}:1x{shape}", f"--optShapes={input_name}:{opt}x{shape}",
            f"--maxShapes={input_name}:{max_batch}x{shape}"]
    return "\n".join([
        "#!/usr/bin/env bash",
        f"# Build the TensorRT plan for {model} on the target GPU into {dest}/ (safe to run again).",
        "# PRECISION=fp16 (default) compiles the FP32 ONNX with --fp16; PRECISION=int8 compiles the explicit",
        f"# Q/DQ INT8 ONNX (--int8 --fp16, no calibrator). Batch 1..{max_batch}, tuned for {opt}"
        + (f" (preferred_batch_size {', '.join(map(str, preferred))})." if preferred else "."),
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        'TRTEXEC="${TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}"',
        'PRECISION="${PRECISION:-fp16}"',
        'case "$PRECISION" in',
        f'  fp16) ONNX={shlex.quote(onnx_rel)}; FLAGS="--fp16" ;;',
        f'  int8) ONNX=../{FILES["int8"]}; FLAGS="--int8 --fp16" ;;',
        '  fp32) ONNX=' + shlex.quote(onnx_rel) + '; FLAGS="" ;;',
        '  *) echo "PRECISION must be fp16, int8 or fp32" >&2; exit 2 ;;',
        "esac",
        '[ -f "$ONNX" ] || { echo "missing $ONNX (export without --no-quantize for int8)" >&2; exit 2; }',
        f"mkdir -p {dest}/1",
        f"cp on_target/{model}/config.pbtxt on_target/{model}/{LABELS} {dest}/",
        '"$TRTEXEC" --onnx="$ONNX" ' + " ".join(shlex.quote(a) for a in argv) + " $FLAGS",
        f"mv {dest}/1/model.plan.partial {dest}/1/model.plan  # a failed build leaves no plan behind",
        f'echo "{dest} ready ($PRECISION)"',
    ]) + "\n"


def write_repository(export_dir: Path, *, spec, name: str, max_batch: int = 4, input_name: str = "video",
                     output_name: str = "logits") -> dict[str, Any]:
    """Write export_dir/triton/ from the export's ONNX files; returns its artifact.json record."""
    import shutil

    from edgekd.io import write_text_atomic

    base = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)
    root = export_dir / BUNDLE
    repo, target = root / "model_repository", root / "on_target"
    variants = [(f"{base}_onnx", FILES["onnx"], "onnxruntime_onnx", repo)]
    if (export_dir / FILES["fp16"]).is_file():
        variants.append((f"{base}_onnx_fp16", FILES["fp16"], "onnxruntime_onnx", repo))
    variants.append((f"{base}_trt", None, "tensorrt_plan", target))
    if not (export_dir / FILES["onnx"]).is_file():
        raise ExportError(f"the Triton repository needs {FILES['onnx']}", "re-run `edgekd export`")
    labels = "\n".join(spec.class_names) + "\n"
    written = {}
    for model, onnx_file, platform, parent in variants:
        d = parent / model
        (d / "1").mkdir(parents=True, exist_ok=True)
        cfg = student_config(model, platform, spec, max_batch=max_batch, input_name=input_name,
                             output_name=output_name)
        write_text_atomic(d / "config.pbtxt", render(cfg))
        write_text_atomic(d / LABELS, labels)
        if onnx_file:
            shutil.copyfile(export_dir / onnx_file, d / "1" / "model.onnx")
        written[model] = {"platform": platform, "source": onnx_file or "built on the target by build_plan.sh",
                          "config": str((d / "config.pbtxt").relative_to(export_dir))}
    plan_model = f"{base}_trt"
    script = root / "build_plan.sh"
    write_text_atomic(script, _script(plan_model, f"../{FILES['onnx']}", input_name,
                                      (3, spec.frames, spec.size, spec.size), max_batch, _preferred(max_batch)))
    script.chmod(0o755)
    run = "tritonserver --model-repository=$PWD/model_repository"
    write_text_atomic(root / "README.md", _readme(name, spec, written, plan_model, max_batch, input_name, run))
    return {"folder": BUNDLE, "models": sorted(written), "max_batch_size": max_batch, "detail": written,
            "plan": {"model": plan_model, "script": "build_plan.sh", "status": "on target"},
            "run": f"cd {BUNDLE} && {run}"}


def _readme(name: str, spec, written: dict[str, Any], plan_model: str, max_batch: int, input_name: str,
            run: str) -> str:
    rows = "\n".join(f"| {m} | {v['platform']} | {v['source']} |" for m, v in sorted(written.items()))
    shape = f"3,{spec.frames},{spec.size},{spec.size}"
    return f"""# {name} for Triton Inference Server

| model | platform | from |
|---|---|---|
{rows}

Serve the ONNX Runtime models (FP32 and FP16; inputs and outputs are FP32 in both):

    cd {BUNDLE}
    {run}

The TensorRT plan is specific to the GPU and TensorRT version, so it is built on the target:

    bash build_plan.sh                 # FP16 from {FILES['onnx']}; PRECISION=int8 bash build_plan.sh for the Q/DQ INT8
    {run}

Measure with perf_analyzer (batch axis excluded from --shape):

    perf_analyzer -m {plan_model} --shape {input_name}:{shape} --concurrency-range 1:4 --percentile=95

Input `{input_name}`: FP32 [{max_batch} max] x 3 x {spec.frames} x {spec.size} x {spec.size}, RGB, (x/255 - mean) / std
with mean {list(spec.mean)}, std {list(spec.std)}. Output: {spec.num_classes} logits; `labels.txt` names them
(request classification with top-k to get labels).
"""
