"""Runners: one small protocol over every runtime a student can run on (export proves, bench measures).

    runner.load()                 build the session/engine (may raise RunnerUnavailable)
    runner.warmup(batch, n)       n untimed calls, then synchronize
    runner.run(batch) -> logits   batch: float32 (B, 3, T, H, W) numpy; logits: float32 (B, C) numpy
    runner.synchronize()          wait for the device, so a timer around run() sees the work finish
    runner.provider               what actually executed first (ORT's session.get_providers()[0], "cuda:0 (...)")
    runner.providers_used         all of them; runner.why: how it was set up
    runner.close()                free the session/engine/model
    logits(runner, x, batch)      logits for many clips, `batch` at a time

Runtime names (profiles list them in the order to try):
    torch-cpu / torch-cuda   PyTorch eager, fp32 (and fp16 on CUDA)
    ort-cpu / ort-cuda / ort-trt   ONNX Runtime with the CPU, CUDA or TensorRT execution provider
    tensorrt                 a native TensorRT engine (built from the ONNX when no engine file exists)

A runtime that is not installed, has no device, or silently falls back to another provider raises
RunnerUnavailable with the reason; the harness turns that into a report row, never a crash.
Heavy libraries are imported inside load().
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from edgekd.errors import BenchError, EdgekdError


class RunnerUnavailable(EdgekdError):
    """This runtime/precision cannot run here; `message` is the reason (a bench report row, or why export
    could not prove an engine). Not a BenchError: export loads runners too."""


@runtime_checkable
class Runner(Protocol):
    name: str
    precision: str
    providers_used: list[str]
    why: str

    def load(self) -> None: ...

    def warmup(self, batch: np.ndarray, n: int) -> None: ...

    def run(self, batch: np.ndarray) -> np.ndarray: ...

    def synchronize(self) -> None: ...

    def close(self) -> None: ...


class _Base:
    """What every runner shares: warm-up, the provider actually used, context-manager close."""

    providers_used: list[str]

    @property
    def provider(self) -> str:
        return self.providers_used[0] if self.providers_used else ""

    def warmup(self, batch: np.ndarray, n: int) -> None:
        for _ in range(n):
            self.run(batch)
        self.synchronize()

    def synchronize(self) -> None:
        pass

    def close(self) -> None:
        for attr in ("session", "net", "context", "engine", "runtime"):
            if hasattr(self, attr):
                delattr(self, attr)

    def __enter__(self):
        self.load()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def logits(runner, x: np.ndarray, batch_size: int = 8, advance=None) -> np.ndarray:
    """(N, C) logits of `runner` for (N, 3, T, H, W) clips, `batch_size` at a time (the last may be smaller)."""
    out = []
    for i in range(0, len(x), batch_size):
        out.append(np.asarray(runner.run(x[i:i + batch_size]), dtype=np.float32))
        if advance is not None:
            advance(len(out[-1]))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


# ----------------------------------------------------------------------------- PyTorch eager

class TorchRunner(_Base):
    """PyTorch eager on CPU or CUDA (a copy of `model`); fp16 converts weights and inputs with .half() (CUDA only)."""

    def __init__(self, model, device: str, precision: str, threads: int | None = None):
        self.name = f"torch-{device}"
        self.precision = precision
        self.device = device
        self.model = model
        self.threads = threads
        self.providers_used: list[str] = []
        self.why = ""

    def load(self) -> None:
        import torch

        if self.model is None:
            raise RunnerUnavailable("no PyTorch checkpoint found next to the export",
                                    "bench a run folder (runs/NAME) so checkpoint.pt is found")
        if self.precision == "int8":
            raise RunnerUnavailable("PyTorch eager has no int8 inference path; the int8 ONNX runs under ort-*/tensorrt")
        if self.device == "cuda":
            if not torch.cuda.is_available():
                build = "CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda} build, no device"
                raise RunnerUnavailable(f"torch.cuda.is_available() is False (torch {torch.__version__}, {build})")
            self.dev = torch.device("cuda", 0)
            self.providers_used = [f"cuda:0 ({torch.cuda.get_device_name(0)})"]
        else:
            if self.precision == "fp16":
                raise RunnerUnavailable("fp16 eager on CPU has no fast kernels; measure fp16 on a GPU")
            self.dev = torch.device("cpu")
            if self.threads:
                torch.set_num_threads(self.threads)
            self.providers_used = [f"cpu ({torch.get_num_threads()} threads)"]
        self.dtype = torch.float16 if self.precision == "fp16" else torch.float32
        import copy

        self.net = copy.deepcopy(self.model).to(self.dev, self.dtype).eval()  # the caller's model stays as it is
        self.why = f"torch {torch.__version__} eager, {self.precision}"

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.dev, self.dtype, non_blocking=True)
            return self.net(x).float().cpu().numpy()

    def synchronize(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()


# ----------------------------------------------------------------------------- ONNX Runtime

ORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "trt": "TensorrtExecutionProvider"}


class OrtRunner(_Base):
    """ONNX Runtime with one execution provider; reports which provider the session really uses."""

    def __init__(self, onnx_path: Path | bytes | None, provider: str, precision: str, *, threads: int | None = None,
                 workspace_mb: int = 1024, cache_dir: Path | None = None, missing_reason: str = "",
                 graph_optimization: str = "all"):
        self.name = f"ort-{provider}"
        self.precision = precision
        self.path = onnx_path
        self.ep = provider
        self.threads = threads
        self.workspace_mb = workspace_mb
        self.cache_dir = cache_dir
        self.missing_reason = missing_reason
        # "disable": run a Q/DQ graph as written (DQ -> float op -> Q) = TensorRT's int8 arithmetic,
        # instead of ORT's fused CPU integer kernels (edgekd.export.qdq explains why that matters)
        self.graph_optimization = graph_optimization
        self.providers_used: list[str] = []
        self.why = ""

    def _provider_options(self) -> dict[str, Any]:
        if self.ep != "trt":
            return {}
        opts: dict[str, Any] = {"trt_max_workspace_size": str(self.workspace_mb << 20),
                                "trt_fp16_enable": str(self.precision in ("fp16", "int8")),
                                "trt_int8_enable": str(self.precision == "int8")}
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            opts.update(trt_engine_cache_enable="True", trt_engine_cache_path=str(self.cache_dir))
        return opts

    def load(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise RunnerUnavailable("onnxruntime is not installed",
                                    "pip install 'edgekd[cpu]' (or 'edgekd[gpu]' for CUDA/TensorRT providers)") from e
        if self.path is None:
            raise RunnerUnavailable(self.missing_reason or f"no {self.precision} ONNX file in the export")
        wanted = ORT_PROVIDERS[self.ep]
        available = ort.get_available_providers()
        if wanted not in available:
            hint = "install onnxruntime-gpu (it replaces onnxruntime) on a machine with CUDA" \
                if self.ep != "cpu" else None
            raise RunnerUnavailable(f"onnxruntime {ort.__version__} has no {wanted} (available: {', '.join(available)})", hint)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                         "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                                         "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                         "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}[self.graph_optimization]
        opts.log_severity_level = 3  # provider fallbacks are reported by us, not as ORT warnings
        if self.threads:
            opts.intra_op_num_threads = self.threads
        providers: list[Any] = [(wanted, self._provider_options())]
        if wanted != "CPUExecutionProvider":
            providers.append("CPUExecutionProvider")  # ORT needs a fallback for nodes the provider rejects
        model = self.path if isinstance(self.path, bytes) else str(self.path)
        label = "the model" if isinstance(self.path, bytes) else Path(self.path).name
        try:
            self.session = ort.InferenceSession(model, opts, providers=providers)
        except Exception as e:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph/RuntimeException types
            raise RunnerUnavailable(f"onnxruntime could not load {label}: {str(e).splitlines()[0][:300]}") from e
        self.providers_used = self.session.get_providers()
        if self.providers_used[0] != wanted:
            raise RunnerUnavailable(f"{wanted} did not initialise; the session fell back to "
                                    f"{', '.join(self.providers_used)} (a CPU measurement would be mislabelled)")
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = list(inp.shape)
        self.why = f"onnxruntime {ort.__version__}, {label}, providers {self.providers_used}"

    def run(self, batch: np.ndarray) -> np.ndarray:
        # InferenceSession.run returns after the outputs are copied back to the host: no synchronize needed
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]


# ----------------------------------------------------------------------------- native TensorRT

class TensorRTRunner(_Base):
    """A TensorRT engine run through the tensorrt Python API with torch CUDA tensors as buffers.

    When the export holds a build manifest instead of an engine (engines are device-specific),
    the engine is built here from the ONNX with the profile's workspace and precision.
    """

    def __init__(self, engine_path: Path | None, onnx_path: Path | None, precision: str, *,
                 workspace_mb: int = 1024, max_batch: int = 1, save_engine_to: Path | None = None):
        self.name = "tensorrt"
        self.precision = precision
        self.engine_path = engine_path
        self.onnx_path = onnx_path
        self.workspace_mb = workspace_mb
        self.max_batch = max_batch
        self.save_engine_to = save_engine_to
        self.providers_used: list[str] = []
        self.why = ""

    def _build(self) -> bytes:
        """An engine from the ONNX with the one builder export uses (edgekd.runtime.tensorrt)."""
        import tempfile

        import onnx

        from edgekd.runtime.tensorrt import BuildRequest, build_engine

        onnx_path = Path(self.onnx_path)
        inp = onnx.load(str(onnx_path), load_external_data=False).graph.input[0]
        dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        fixed = dims[0] if dims[0] > 0 else None
        with tempfile.TemporaryDirectory(prefix="edgekd-trt-") as tmp:
            req = BuildRequest(root=Path(tmp), onnx=str(onnx_path.resolve()), engine="runner.engine",
                               precision=self.precision, input_name=inp.name, input_dims=tuple(dims[1:]),
                               batch=(fixed,) * 3 if fixed else (1, 1, self.max_batch), workspace_mb=self.workspace_mb)
            build_engine(req)
            data = (Path(tmp) / "runner.engine").read_bytes()
        if self.save_engine_to is not None:
            from edgekd.io import atomic_path

            with atomic_path(self.save_engine_to) as tmp_path:
                tmp_path.write_bytes(data)
        return data

    def load(self) -> None:
        try:
            import tensorrt as trt
        except ImportError as e:
            raise RunnerUnavailable("the tensorrt Python package is not installed",
                                    "it ships with JetPack on a Jetson; on x86: pip install 'edgekd[trt]'") from e
        import torch

        if not torch.cuda.is_available():
            raise RunnerUnavailable("TensorRT needs a CUDA device and torch.cuda.is_available() is False")
        if self.engine_path is None and self.onnx_path is None:
            raise RunnerUnavailable(f"no {self.precision} engine and no ONNX to build one from")
        logger = trt.Logger(trt.Logger.ERROR)
        if self.engine_path is not None and Path(self.engine_path).is_file():
            data, origin = Path(self.engine_path).read_bytes(), Path(self.engine_path).name
        else:
            data, origin = self._build(), f"built here from {Path(self.onnx_path).name}"
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise RunnerUnavailable(f"TensorRT {trt.__version__} could not deserialize {origin} "
                                    "(engines only load on the TensorRT version and GPU that built them)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        # engines keep fp32 I/O unless built otherwise; follow whatever the engine declares
        dtypes = {trt.float32: torch.float32, trt.float16: torch.float16}
        self.out_dtype = dtypes.get(self.engine.get_tensor_dtype(self.outputs[0]), torch.float32)
        if self.engine.get_tensor_dtype(self.inputs[0]) != trt.float32:
            raise RunnerUnavailable(f"{origin} takes {self.engine.get_tensor_dtype(self.inputs[0])} input; "
                                    "edgekd feeds float32 clips", "build the engine from edgekd's ONNX (fp32 I/O)")
        # a static-batch (DLA) engine takes exactly min batch: smaller batches are padded
        self.min_batch = int(tuple(self.engine.get_tensor_profile_shape(self.inputs[0], 0)[0])[0])
        self.stream = torch.cuda.Stream()
        self.torch = torch
        self.providers_used = [f"TensorRT {trt.__version__} on {torch.cuda.get_device_name(0)}"]
        self.why = f"TensorRT {trt.__version__}, {self.precision} engine ({origin})"

    def run(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        n = len(batch)
        if n < self.min_batch:
            batch = np.concatenate([batch, np.zeros((self.min_batch - n, *batch.shape[1:]), np.float32)])
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).cuda()
        self.context.set_input_shape(self.inputs[0], tuple(x.shape))
        self.context.set_tensor_address(self.inputs[0], x.data_ptr())
        out_shape = tuple(self.context.get_tensor_shape(self.outputs[0]))
        y = torch.empty(out_shape, dtype=self.out_dtype, device="cuda")
        self.context.set_tensor_address(self.outputs[0], y.data_ptr())
        torch.cuda.current_stream().synchronize()  # the input copy ran on the default stream
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise BenchError("TensorRT execute_async_v3 returned False")
        self.stream.synchronize()
        return y[:n].float().cpu().numpy()

    def synchronize(self) -> None:
        self.stream.synchronize()


# ----------------------------------------------------------------------------- by name

def make_runner(runtime: str, precision: str, *, model=None, onnx: dict[str, Path] | None = None,
                engines: dict[str, Path] | None = None, threads: int | None = None, workspace_mb: int = 1024,
                max_batch: int = 1, cache_dir: Path | None = None):
    """The runner named `runtime` ("torch-cpu", "ort-cuda", "tensorrt", ...) for one precision.

    model: the PyTorch module (torch-*); onnx / engines: precision -> file of an export folder.
    Nothing is loaded here: a runtime that cannot run says why in load().
    """
    onnx, engines = onnx or {}, engines or {}
    if runtime.startswith("torch-"):
        return TorchRunner(model, runtime.split("-", 1)[1], precision, threads=threads)
    if runtime.startswith("ort-"):
        provider = runtime.split("-", 1)[1]
        if provider not in ORT_PROVIDERS:
            raise BenchError(f"unknown runtime {runtime!r}", "use one of: " + ", ".join(f"ort-{p}" for p in ORT_PROVIDERS))
        # TensorRT EP makes fp16 itself from the fp32 graph; int8 reads the Q/DQ graph
        path = onnx.get("int8" if precision == "int8" else "fp32") if provider == "trt" else onnx.get(precision)
        have = ", ".join(p.name for p in onnx.values()) or "nothing: run `edgekd export` first"
        missing = f"the export has no {precision} ONNX (it has {have})"
        if precision == "fp16":
            missing += "; fp16 runs under ort-trt / tensorrt from the fp32 ONNX"
        return OrtRunner(path, provider, precision, threads=threads, workspace_mb=workspace_mb,
                         cache_dir=cache_dir / "ort-trt-cache" if cache_dir else None, missing_reason=missing)
    if runtime == "tensorrt":
        return TensorRTRunner(engines.get(precision), onnx.get("int8" if precision == "int8" else "fp32"), precision,
                              workspace_mb=workspace_mb, max_batch=max_batch)
    raise BenchError(f"unknown runtime {runtime!r}", "use torch-cpu, torch-cuda, ort-cpu, ort-cuda, ort-trt or tensorrt")
