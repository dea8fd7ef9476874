"""`export_run`: checkpoint -> export folder with ONNX, INT8, TensorRT (or its build manifest), artifact.json.

    runs/NAME/checkpoint.pt  ->  runs/NAME/export/
                                   student.onnx          FP32, dynamic batch, metadata, parity-checked
                                   student.int8.onnx     QDQ INT8, calibrated on train clips, parity + accuracy
                                   student.fp16.engine   + .json (TensorRT importable), or
                                   build_manifest.json + build_engine.sh (+ calib_clips.npy)
                                   artifact.json

Everything is written into a staging folder beside the destination and moved into place only when
every artifact has passed parity, so a failed export never leaves a half-written folder and an
existing export is replaced (with `force=True` only) in one rename.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from edgekd.errors import CheckpointError, ConfigError, ExportError


def load_student(ckpt_path: Path):
    """(checkpoint dict, student in eval mode, DataSpec); CheckpointError for anything unusable."""
    from edgekd.checkpoint import build_student_from_checkpoint, load_checkpoint

    ckpt = load_checkpoint(ckpt_path)
    student = ckpt.get("student")
    if not isinstance(student, dict) or "name" not in student or "data_spec" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"{ckpt_path} lacks the student/data_spec/state_dict entries of an edgekd checkpoint",
                              "pass a checkpoint.pt written by `edgekd distill`")
    try:
        model, spec = build_student_from_checkpoint(ckpt)
    except ConfigError as e:
        raise CheckpointError(f"{ckpt_path}: {e.message} (the student named inside the checkpoint)",
                              (e.hint + "; " if e.hint else "") +
                              "the checkpoint may come from a newer edgekd - upgrade, or re-run `edgekd distill`") from e
    return ckpt, model, spec


def _is_export_dir(d: Path) -> bool:
    from edgekd.export.artifact import ARTIFACT_FILE

    return (d / ARTIFACT_FILE).is_file() or (d / "student.onnx").is_file()


def _check_out_dir(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"output {out_dir} is a file, not a folder", "pass --out with a folder path")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not _is_export_dir(out_dir):
            raise ExportError(f"{out_dir} is not empty and is not an edgekd export folder; refusing to replace it",
                              "pass --out with an empty or new folder")
        if not force:
            raise ExportError(f"{out_dir} already holds an export", "pass --force to replace it")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"cannot create the output folder {out_dir}: {e.strerror}",
                          "pass --out with a folder you can write to") from e
    if not os.access(out_dir.parent, os.W_OK | os.X_OK) or (out_dir.is_dir() and not os.access(out_dir, os.W_OK)):
        raise ExportError(f"the output folder {out_dir} is not writable", "pass --out with a folder you can write to")


def _publish_modes(stage: Path) -> None:
    """Staging files are created private (mkstemp/mkdtemp: 0600/0700); give them the usual umask modes."""
    umask = os.umask(0)
    os.umask(umask)
    stage.chmod(0o777 & ~umask)
    for f in stage.iterdir():
        f.chmod((0o777 if os.access(f, os.X_OK) else 0o666) & ~umask)


def _commit(stage: Path, out_dir: Path) -> None:
    """Move the staged export into place; an old export is swapped out, then deleted."""
    _publish_modes(stage)
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        old.rmdir()
        out_dir.rename(old)
    stage.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _dataset_of(ckpt: dict[str, Any]) -> str | None:
    data = (ckpt.get("config") or {}).get("data") or {}
    return data.get("path") if isinstance(data, dict) else None


class _Stopwatch:
    def __enter__(self) -> "_Stopwatch":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0


def _run_all(fn, x, batch: int, rep, desc: str):
    import numpy as np

    out = []
    with rep.bar(desc, len(x)) as bar:
        for i in range(0, len(x), batch):
            out.append(fn(x[i:i + batch]))
            bar.advance(len(x[i:i + batch]))
    return np.concatenate(out) if out else np.zeros((0,))


def export_run(run_or_checkpoint: str | Path, out_dir: str | Path | None = None, *, opset: int = 17,
               int8: bool = True, trt: bool = False, precision: str = "fp16", profile=None, force: bool = False,
               data: str | Path | None = None, parity_clips: int = 16, noise_inputs: int = 4,
               eval_clips: int = 96, int8_settings=None, tolerances: dict[str, Any] | None = None,
               dla: bool = False, dla_core: int = 0, fp16_layers: tuple[str, ...] = (), simplify: bool = True,
               dynamic_batch: bool = True, quiet: bool = False) -> Path:
    """Export a run (or checkpoint.pt) and prove every artifact against PyTorch; returns the export folder.

    data: dataset for parity/calibration/accuracy clips (default: the one the checkpoint trained on,
    falling back to the embedded synthetic dataset). tolerances: {"fp32"|"fp16"|"int8": Tolerance}
    overrides. precision: the TensorRT engine's precision ("fp16" | "int8" | "fp32").
    """
    from edgekd.bench.profiles import load_profile
    from edgekd.checkpoint import resolve_checkpoint_path
    from edgekd.export.int8 import Int8Settings
    from edgekd.export.onnx_export import INPUT_NAME, check_opset
    from edgekd.export.parity import TOLERANCES
    from edgekd.export.ui import Reporter

    rep = Reporter(quiet=quiet)
    check_opset(opset)
    if parity_clips < 1:
        raise ConfigError("parity needs at least 1 clip", "pass --parity-clips 8 or more")
    tol = {**TOLERANCES, **(tolerances or {})}
    settings = (int8_settings or Int8Settings()).check()
    prof = load_profile(profile) if profile is not None else None

    ckpt_path = resolve_checkpoint_path(run_or_checkpoint)
    ckpt, model, spec = load_student(ckpt_path)
    name = ckpt["student"]["name"]
    out_dir = Path(out_dir) if out_dir is not None else ckpt_path.parent / "export"
    _check_out_dir(out_dir, force)
    if trt:  # validate the TensorRT request before any long work
        from edgekd.export.tensorrt import make_request

        make_request(out_dir, onnx="student.onnx", precision=precision, input_name=INPUT_NAME,
                     input_dims=spec.input_shape(1)[1:], profile=prof, dla=dla, dla_core=dla_core,
                     fp16_layers=tuple(fp16_layers), fixed_batch=None if dynamic_batch else 1)
    rep.step(f"exporting {name} from {ckpt_path} (input 3x{spec.frames}x{spec.size}x{spec.size}, "
             f"{spec.num_classes} classes) to {out_dir}")

    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
    except OSError as e:
        raise ExportError(f"the output folder {out_dir.parent} is not writable ({e.strerror})",
                          "pass --out with a folder you can write to") from e
    try:
        artifact = _export(stage, rep=rep, ckpt=ckpt, ckpt_path=ckpt_path, model=model, spec=spec, name=name,
                           out_dir=out_dir, opset=opset, int8=int8, trt=trt, precision=precision, prof=prof,
                           data=data, parity_clips=parity_clips, noise_n=noise_inputs, eval_clips=eval_clips,
                           settings=settings, tol=tol, dla=dla, dla_core=dla_core, fp16_layers=tuple(fp16_layers),
                           simplify=simplify, dynamic_batch=dynamic_batch)
        _commit(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    rep.done(f"wrote {out_dir / 'artifact.json'} ({len(artifact['artifacts'])} artifacts)")
    return out_dir


def _export(stage: Path, *, rep, ckpt, ckpt_path, model, spec, name, out_dir, opset, int8, trt, precision, prof,
            data, parity_clips, noise_n, eval_clips, settings, tol, dla, dla_core, fp16_layers, simplify,
            dynamic_batch) -> dict[str, Any]:
    from edgekd.export import parity as P
    from edgekd.export.artifact import ARTIFACT_FILE, ARTIFACT_FORMAT, file_entry, library_versions, now
    from edgekd.export.int8 import quantize_int8
    from edgekd.export.onnx_export import export_onnx
    from edgekd.io import sha256_file, write_json

    ckpt_sha = sha256_file(ckpt_path)

    # 1. ONNX -------------------------------------------------------------------------------------
    with _Stopwatch() as t:
        info = export_onnx(model, spec, stage / "student.onnx", student_name=name, opset=opset,
                           dynamic_batch=dynamic_batch, simplify=simplify,
                           extra_metadata={"checkpoint_sha256": ckpt_sha})
    rep.done(f"student.onnx: opset {opset}, {info.num_nodes} nodes, input {info.input_shape}"
             f"{', simplified by ' + info.simplified if info.simplified else ''} ({t.seconds:.1f} s)")

    # 2. clips: eval split for parity/accuracy, train split for calibration ---------------------
    manifest, source, note = P.open_dataset(data if data is not None else _dataset_of(ckpt))
    if note:
        rep.warn(note)
    n_eval = max(parity_clips, eval_clips if int8 else 0)
    ev = P.load_clips(spec, manifest, split="test", limit=n_eval, source=source, note=note, reporter=rep,
                      fallback_split="train")
    need_calib = int8 or (trt and precision == "int8")
    calib = P.load_clips(spec, manifest, split="train", limit=settings.calibration_clips, source=source,
                         reporter=rep, fallback_split="test") if need_calib else None
    x_par, x_noise = ev.x[:parity_clips], P.noise_inputs(spec, noise_n, seed=0)
    rep.done(f"{len(ev)} {ev.split} clips from {source}" + (f", {len(calib)} {calib.split} clips for calibration"
                                                            if calib is not None else ""))

    # 3. PyTorch reference and FP32 ONNX Runtime parity ------------------------------------------
    ref_par, ref_noise = P.torch_logits(model, x_par), P.torch_logits(model, x_noise)
    sess = P.ort_session(stage / "student.onnx")
    fp32_par, fp32_noise = P.ort_logits(sess, x_par), P.ort_logits(sess, x_noise)
    par32 = P.judge("student.onnx (ONNX Runtime FP32)", ref_par, fp32_par, ref_noise, fp32_noise, tol["fp32"])
    _say_parity(rep, "FP32 ONNX Runtime", par32)
    artifacts = [file_entry(stage, "student.onnx", fmt="onnx", precision="fp32", runtime="onnxruntime",
                            opset=opset, nodes=info.num_nodes, simplified=info.simplified, parity=par32,
                            input={"name": info.input_name, "shape": info.input_shape})]

    # 4. INT8 QDQ --------------------------------------------------------------------------------
    if int8:
        with _Stopwatch() as t:
            q = quantize_int8(stage / "student.onnx", stage / "student.int8.onnx", calib.x, settings,
                              input_name=info.input_name)
        rep.done(f"student.int8.onnx: {q['method']} calibration on {q['calibration_clips']} {calib.split} clips, "
                 f"{q['weights']} weights, {q['activations']} activations ({t.seconds:.1f} s)")
        sess8 = P.ort_session(stage / "student.int8.onnx")
        i8_par, i8_noise = P.ort_logits(sess8, x_par), P.ort_logits(sess8, x_noise)
        par8 = P.judge("student.int8.onnx (ONNX Runtime INT8)", ref_par, i8_par, ref_noise, i8_noise, tol["int8"])
        _say_parity(rep, "INT8 ONNX Runtime", par8)
        f32 = _run_all(lambda b: P.ort_logits(sess, b), ev.x, 8, rep, "FP32 on eval clips")
        i8 = _run_all(lambda b: P.ort_logits(sess8, b), ev.x, 8, rep, "INT8 on eval clips")
        acc32, acc8 = (P.accuracy(f32, ev.labels), P.accuracy(i8, ev.labels)) if ev.labels_match else (None, None)
        artifacts[0]["accuracy"] = {"split": ev.split, "clips": len(ev), "top1": acc32}
        accuracy = {"split": ev.split, "clips": len(ev), "source": ev.source, "labels_match": ev.labels_match,
                    "fp32_top1": acc32, "top1": acc8,
                    "delta": None if acc32 is None else acc8 - acc32,
                    "agreement_with_fp32": float((f32.argmax(1) == i8.argmax(1)).mean())}
        rep.done("INT8 accuracy on " + (f"{len(ev)} {ev.split} clips: {acc8:.3f} vs FP32 {acc32:.3f} "
                                         f"(Δ {acc8 - acc32:+.3f}), " if acc32 is not None else
                                         f"{len(ev)} clips (labels are not the checkpoint's classes): ")
                 + f"agreement with FP32 {accuracy['agreement_with_fp32']:.3f}")
        artifacts.append(file_entry(stage, "student.int8.onnx", fmt="onnx", precision="int8", runtime="onnxruntime",
                                    opset=opset, quantization=q, parity=par8, accuracy=accuracy,
                                    calibration=calib.describe(),
                                    input={"name": info.input_name, "shape": info.input_shape}))

    # 5. TensorRT: engine where importable, else the build-on-target manifest ---------------------
    readiness = None
    if prof is not None and prof.tensorrt_version:
        from edgekd.export.readiness import check_readiness

        r = check_readiness(stage / "student.onnx", prof, precision if trt else "fp16")
        readiness = {k: v for k, v in r.to_dict().items() if k != "operators"}
        dla_text = {"dla": "runs on DLA", "dla+gpu": "DLA with GPU fallback", "fail": "DLA not usable"}
        (rep.done if r.trt_ok else rep.warn)(f"TensorRT readiness on {prof.name}: "
                                             f"{'builds' if r.trt_ok else 'will not build'}"
                                             + (f", {dla_text[r.dla_verdict]}" if r.dla_cores else "")
                                             + " (details: edgekd export --check-trt)")
    if trt:
        artifacts.append(_tensorrt(stage, rep=rep, prof=prof, precision=precision, info=info, spec=spec, dla=dla,
                                   dla_core=dla_core, fp16_layers=fp16_layers, calib=calib, x_par=x_par,
                                   dynamic_batch=dynamic_batch,
                                   x_noise=x_noise, ref_par=ref_par, ref_noise=ref_noise, tol=tol))

    try:
        ck_rel = os.path.relpath(ckpt_path.resolve(), out_dir.resolve())
    except ValueError:  # different drives (Windows)
        ck_rel = str(ckpt_path.resolve())
    artifact = {
        "kind": ARTIFACT_FORMAT,
        "format": "onnx", "precision": "fp32", "file": "student.onnx",
        "input": {"name": info.input_name, "shape": info.input_shape, "dtype": "float32", "layout": "NCTHW",
                  "dynamic_axes": {k: {str(a): n for a, n in v.items()} for k, v in info.dynamic_axes.items()}},
        "outputs": [{"name": n, "shape": info.output_shape} for n in info.output_names],
        "opset": opset,
        "data_spec": spec.to_dict(),
        "student": {"name": name, "kwargs": ckpt["student"].get("kwargs", {})},
        "checkpoint": {"path": ck_rel, "sha256": ckpt_sha, "metrics": ckpt.get("metrics") or {}},
        "checkpoint_sha256": ckpt_sha,
        "parity_inputs": {"clips": ev.describe() | {"clips": len(x_par)}, "noise": len(x_noise),
                          "noise_kind": "standard normal, seed 0"},
        "artifacts": artifacts,
        "tensorrt_readiness": readiness,
        "libraries": library_versions(),
        "created": now(),
    }
    write_json(stage / ARTIFACT_FILE, artifact)
    return artifact


def _say_parity(rep, label: str, p: dict[str, Any]) -> None:
    c = p["clips"]
    rep.done(f"parity {label} vs PyTorch on {c['n']} clips: max |Δ| {c['max_abs']:.2e}, "
             f"cosine ≥ {c['cosine_min']:.5f}, top-1 agreement {c['top1_agreement']:.3f}"
             + (f"; noise max |Δ| {p['noise']['max_abs']:.2e}" if p.get("noise") else ""))


def _tensorrt(stage: Path, *, rep, prof, precision, info, spec, dla, dla_core, fp16_layers, calib, x_par, x_noise,
              ref_par, ref_noise, tol, dynamic_batch) -> dict[str, Any]:
    from edgekd.export import parity as P
    from edgekd.export.artifact import file_entry
    from edgekd.export.tensorrt import build_engine, engine_logits, make_request, tensorrt_status, write_build_manifest
    from edgekd.io import sha256_file

    req = make_request(stage, onnx="student.onnx", precision=precision, input_name=info.input_name,
                       input_dims=spec.input_shape(1)[1:], profile=prof, dla=dla, dla_core=dla_core,
                       fp16_layers=fp16_layers, fixed_batch=None if dynamic_batch else 1)
    trt, reason = tensorrt_status()
    manifest = write_build_manifest(req, profile=prof, calib=calib.x if calib is not None and precision == "int8" else None,
                                    calib_source=calib.describe() if calib is not None else None,
                                    onnx_sha256=sha256_file(stage / "student.onnx"),
                                    reason="" if trt else reason, built_here=trt is not None)
    target = manifest["target"]
    if trt is None:
        rep.warn(f"{reason}: no engine built here; wrote build_manifest.json + build_engine.sh - run "
                 f"`bash build_engine.sh` on the target ({target['device']}) to build {req.engine}")
        return file_entry(stage, "build_manifest.json", fmt="tensorrt-build-manifest", precision=precision,
                          built=False, reason=reason, engine=req.engine, script="build_engine.sh",
                          calibration_clips=req.calib_clips, trtexec=manifest["trtexec"]["command"],
                          target=target, portability=manifest["portability"], status="on target")
    meta = build_engine(req, calib.x if calib is not None and precision == "int8" else None, reporter=rep)
    out_par, out_noise = engine_logits(stage / req.engine, x_par), engine_logits(stage / req.engine, x_noise)
    par = P.judge(f"{req.engine} (TensorRT {precision})", ref_par, out_par, ref_noise, out_noise, tol[precision])
    _say_parity(rep, f"TensorRT {precision}", par)
    if prof is not None and not any(m.lower() in meta["gpu"].lower() for m in [prof.device, prof.name]):
        rep.warn(f"engine built for {meta['gpu']} (TensorRT {meta['tensorrt']}), not for {prof.device}: "
                 "rebuild on the target with build_engine.sh")
    return file_entry(stage, req.engine, fmt="tensorrt", precision=precision, metadata=req.engine + ".json",
                      engine=meta, parity=par, build_manifest="build_manifest.json",
                      input={"name": info.input_name, "shape": meta["input"]["max"]})
