"""Configuration-load check of an export's Triton repository with Triton's own server, on CPU.

This is NOT a runtime check of the onnxruntime or TensorRT backends (they ship only in NGC
containers): it proves that tritonserver parses and accepts every config.pbtxt edgekd writes
(inputs, outputs, dims without the batch axis, max_batch_size, dynamic batching, sequence batching
and implicit-state declarations, label files) and that a request of the declared shape comes back
with the declared output.

How: the repository is copied; in each model `platform: "onnxruntime_onnx"` becomes
`backend: "python"`, GPU instances become CPU ones, and a model.py beside model.onnx runs that ONNX
with ONNX Runtime (the Python backend cannot carry implicit state, so a stateful model's states are
fed from zeros and its stream answer is not checked). The server is the tritonserver binary bundled
in the `nvidia-pytriton` wheel (`pip install nvidia-pytriton`; Linux x86_64/aarch64, glibc >= 2.35).

    python benchmarks/triton_load.py runs/NAME/export [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL_PY = '''import json, os
import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """Stand-in for the onnxruntime backend: the same model.onnx, run by ONNX Runtime on CPU."""

    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.sess.get_inputs()]
        self.outputs = [o["name"] for o in cfg["output"]]
        self.states = {s["input_name"]: s for s in cfg.get("sequence_batching", {}).get("state", [])}

    def execute(self, requests):
        out = []
        for r in requests:
            feeds = {}
            batch = None
            for name in self.inputs:
                t = pb_utils.get_input_tensor_by_name(r, name)
                if t is not None:
                    feeds[name] = t.as_numpy()
                    batch = len(feeds[name])
            for name in self.inputs:  # implicit state: zeros (the Python backend cannot carry it)
                if name not in feeds:
                    dims = [int(d) for d in self.states[name]["dims"]]
                    feeds[name] = np.zeros([batch] + dims, np.float32)
            res = dict(zip([o.name for o in self.sess.get_outputs()], self.sess.run(None, feeds)))
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor(n, res[n]) for n in self.outputs]))
        return out
'''


def stand_in(repo: Path, dst: Path) -> list[str]:
    """Copy `repo` to `dst` with every onnxruntime model served by the Python backend; the model names."""
    shutil.copytree(repo, dst)
    names = []
    for cfg in sorted(dst.glob("*/config.pbtxt")):
        text = cfg.read_text()
        text = text.replace('platform: "onnxruntime_onnx"', 'backend: "python"').replace("KIND_GPU", "KIND_CPU")
        cfg.write_text(text)
        for version in cfg.parent.iterdir():
            if (version / "model.onnx").is_file():
                (version / "model.py").write_text(MODEL_PY)
        names.append(cfg.parent.name)
    return names


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(repo: Path, work: Path, log: Path):
    """tritonserver from the nvidia-pytriton wheel, with the Python backend stub of this interpreter."""
    import pytriton
    from pytriton.utils.distribution import get_libs_path, get_stub_path

    dist = Path(pytriton.__file__).parent / "tritonserver"
    server = work / "tritonserver"
    shutil.copytree(dist, server, ignore=shutil.ignore_patterns("python_backend_stubs"))
    shutil.copy(get_stub_path(f"{sys.version_info[0]}.{sys.version_info[1]}"),
                server / "backends" / "python" / "triton_python_backend_stub")
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join(p for p in (env.get("LD_LIBRARY_PATH"), str(get_libs_path())) if p)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # the stub runs model.py with this Python
    http, grpc, metrics = free_port(), free_port(), free_port()
    cmd = [str(server / "bin" / "tritonserver"), f"--model-repository={repo}",
           f"--backend-directory={server / 'backends'}", f"--cache-directory={server / 'caches'}",
           f"--http-port={http}", f"--grpc-port={grpc}", f"--metrics-port={metrics}", "--allow-gpu-metrics=false",
           "--log-verbose=0", "--exit-timeout-secs=5"]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    return proc, http


def request_each(url: str, repo: Path, names: list[str]) -> list[str]:
    """One request per model, of the shape its config declares."""
    import numpy as np
    import tritonclient.http as th

    client = th.InferenceServerClient(url)
    lines = []
    for name in names:
        cfg = client.get_model_config(name)
        # batch 2 where the model batches; the sequence batcher takes one request row per sequence
        batch = (1 if "sequence_batching" in cfg else 2) if cfg.get("max_batch_size", 0) > 0 else None
        state_inputs = {s["input_name"] for s in cfg.get("sequence_batching", {}).get("state", [])}
        inputs = []
        for spec in cfg["input"]:
            if spec["name"] in state_inputs:
                continue
            shape = ([batch] if batch else []) + [int(d) for d in spec["dims"]]
            t = th.InferInput(spec["name"], shape, "FP32")
            t.set_data_from_numpy(np.random.default_rng(0).standard_normal(shape, dtype=np.float32))
            inputs.append(t)
        seq = {"sequence_id": 1, "sequence_start": True, "sequence_end": True} if "sequence_batching" in cfg else {}
        outs = [th.InferRequestedOutput(o["name"]) for o in cfg["output"]]
        res = client.infer(name, inputs, outputs=outs, **seq)
        got = {o["name"]: res.as_numpy(o["name"]).shape for o in cfg["output"]}
        lines.append(f"{name}: READY, request -> " + ", ".join(f"{k} {list(v)}" for k, v in got.items()))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export", type=Path, help="an export folder holding triton/model_repository")
    ap.add_argument("--keep", type=Path, help="leave the stand-in repository and server log here")
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    import tritonclient.http as th

    work = Path(args.keep or tempfile.mkdtemp(prefix="edgekd-triton-"))
    work.mkdir(parents=True, exist_ok=True)
    repo = work / "model_repository"
    shutil.rmtree(repo, ignore_errors=True)
    names = stand_in(args.export / "triton" / "model_repository", repo)
    log = work / "tritonserver.log"
    proc, port = start_server(repo, work, log)
    try:
        client = th.InferenceServerClient(f"127.0.0.1:{port}")
        t0 = time.time()
        while time.time() - t0 < args.timeout:
            if proc.poll() is not None:
                raise SystemExit(f"tritonserver exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            try:
                if client.is_server_ready():
                    break
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            time.sleep(0.5)
        else:
            raise SystemExit(f"tritonserver not ready after {args.timeout:.0f} s:\n{log.read_text()[-3000:]}")
        print(f"tritonserver ready in {time.time() - t0:.1f} s with {len(names)} models "
              "(configuration-load check; the Python backend stands in for onnxruntime)")
        for line in request_each(f"127.0.0.1:{port}", repo, names):
            print(line)
        status = re.findall(r"\| (\S+)\s+\| (\d+)\s+\| (READY|UNAVAILABLE[^|]*)", log.read_text())
        for model, version, state in status:
            print(f"server log: {model} v{version} {state.strip()}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
