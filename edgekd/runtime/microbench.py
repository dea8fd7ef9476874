"""Short micro-benchmarks that measure what this machine can do, instead of assuming a datasheet.

    fp32 / fp16 FLOP/s   best rate of a square GEMM (fp16 only on CUDA, where it has units); on a CPU one
                         core through torch and ONNX Runtime (MLAS, the kernels the models run), the
                         higher, times the cores
    int8 OP/s            best rate of ONNX Runtime's MatMulInteger (u8 x s8, the kernels INT8 models use)
    bandwidth            bytes read + written per second by a large array copy (well beyond the caches)
    launch_us            time per operator of a long chain of tiny ONNX Runtime nodes (CPU), or per tiny
                         CUDA kernel launch: the fixed cost every layer pays whatever its size

Each figure is the best of repeated runs within about a second: a peak, not an average, so a busy
shared machine reads low rather than high. `measure()` is called once per process (host.host_profile).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

BUDGET_S = 1.0   # wall time per micro-benchmark


@dataclass
class Peaks:
    flops: dict[str, float]            # precision -> FLOP/s (OP/s for int8)
    bandwidth: float                   # bytes/s
    launch_us: float                   # fixed time per kernel/operator
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"tflops": {p: v / 1e12 for p, v in self.flops.items()}, "bandwidth_gbs": self.bandwidth / 1e9,
                "kernel_launch_us": self.launch_us, "notes": self.notes}


def best_rate(fn, work: float, budget_s: float = BUDGET_S, sync=lambda: None) -> float:
    """max over repeats of work / seconds for fn(), within about `budget_s` (one untimed warm-up)."""
    fn()
    sync()
    best, t_end = 0.0, time.perf_counter() + budget_s
    while True:
        t0 = time.perf_counter()
        fn()
        sync()
        dt = time.perf_counter() - t0
        best = max(best, work / dt)
        if time.perf_counter() > t_end:
            return best


def gemm_flops(n: int = 1024, device: str = "cpu", dtype: str = "fp32") -> float:
    """Best GEMM rate through torch: the whole GPU, or one CPU core (measure() multiplies by the cores)."""
    import torch

    if device == "cpu":
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return gemm_flops(n, "cpu-1", dtype)
        finally:
            torch.set_num_threads(threads)
    device = "cpu" if device == "cpu-1" else device
    dt = {"fp32": torch.float32, "fp16": torch.float16}[dtype]
    a = torch.randn(n, n, device=device, dtype=dt)
    b = torch.randn(n, n, device=device, dtype=dt)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.inference_mode():
        return best_rate(lambda: torch.mm(a, b), 2.0 * n ** 3, sync=sync)


def ort_gemm(n: int = 512, precision: str = "fp32") -> float | None:
    """Best rate of one core running an (n x n) GEMM through ONNX Runtime's CPU kernels (MLAS): fp32
    MatMul, or int8 MatMulInteger (u8 x s8 -> s32, what INT8 models run). None without onnxruntime."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    if precision == "int8":
        node, ta, tb, tc = "MatMulInteger", TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32
    else:
        node, ta, tb, tc = "MatMul", TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT
    g = helper.make_graph([helper.make_node(node, ["a", "b"], ["c"])], "gemm",
                          [helper.make_tensor_value_info("a", ta, [n, n]), helper.make_tensor_value_info("b", tb, [n, n])],
                          [helper.make_tensor_value_info("c", tc, [n, n])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # one core; measure() multiplies by the cores
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    if precision == "int8":
        feed = {"a": rng.integers(0, 255, (n, n), dtype=np.uint8), "b": rng.integers(-127, 127, (n, n), dtype=np.int8)}
    else:
        feed = {"a": rng.standard_normal((n, n), dtype=np.float32), "b": rng.standard_normal((n, n), dtype=np.float32)}
    return best_rate(lambda: sess.run(None, feed), 2.0 * n ** 3)


def copy_bandwidth(mbytes: int = 256, device: str = "cpu") -> float:
    """Bytes moved per second by dst.copy_(src): each byte is read once and written once."""
    import torch

    n = mbytes * 2**20 // 4
    src = torch.ones(n, device=device)
    dst = torch.empty_like(src)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    return best_rate(lambda: dst.copy_(src), 2.0 * n * 4, sync=sync)


def ort_op_overhead_us(nodes: int = 200) -> float | None:
    """Seconds per node of a chain of Relu nodes on one float: ONNX Runtime's fixed cost per operator."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    names = ["x"] + [f"t{i}" for i in range(nodes)]
    g = helper.make_graph([helper.make_node("Relu", [names[i]], [names[i + 1]]) for i in range(nodes)], "chain",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info(names[-1], TensorProto.FLOAT, [1])])
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every node
    sess = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
                                opts, providers=["CPUExecutionProvider"])
    x = {"x": np.ones(1, np.float32)}
    return 1e6 / best_rate(lambda: sess.run(None, x), nodes, budget_s=0.5)


def cuda_launch_us(n: int = 200) -> float:
    import torch

    x = torch.zeros(1, device="cuda")

    def launches():
        for _ in range(n):
            x.add_(1)

    return 1e6 / best_rate(launches, n, budget_s=0.5, sync=torch.cuda.synchronize)


def measure(cuda: bool = False) -> Peaks:
    """Every figure for this host: the CPU's, or the GPU's when `cuda`."""
    if cuda:
        fp32 = gemm_flops(4096, "cuda", "fp32")
        fp16 = gemm_flops(4096, "cuda", "fp16")
        # int8 on a GPU runs under TensorRT / ORT-TRT; no int8 GEMM is reachable from torch alone
        return Peaks(flops={"fp32": fp32, "fp16": fp16, "int8": fp16},
                     bandwidth=copy_bandwidth(1024, "cuda"), launch_us=cuda_launch_us(),
                     notes={"int8": "not measured on GPU: the fp16 GEMM rate stands in"})
    notes = {"fp16": "no fp16 arithmetic units on this CPU path: the fp32 GEMM rate"}
    # One core at a time, times the cores: threads of a GEMM wait on each other, and on a busy shared
    # machine one stalled thread stalls the call, so a multi-threaded GEMM reads far below the silicon.
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    fp32 = cores * max(gemm_flops(512), ort_gemm(512, "fp32") or 0.0)
    i8 = ort_gemm(512, "int8")
    i8 = cores * i8 if i8 is not None else None
    if i8 is None:
        i8, notes["int8"] = fp32, "onnxruntime missing: the fp32 rate stands in"
    launch = ort_op_overhead_us()
    if launch is None:
        launch, notes["kernel_launch_us"] = 10.0, "onnxruntime missing: 10 us assumed"
    return Peaks(flops={"fp32": fp32, "fp16": fp32, "int8": i8}, bandwidth=copy_bandwidth(), launch_us=launch,
                 notes=notes)
