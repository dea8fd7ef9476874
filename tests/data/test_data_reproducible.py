"""Same seed, same bytes: every generated dataset and test video is identical from one process to the next.

Two fresh interpreters write the synthetic set, both download layouts and the test videos, differing in
everything that must not matter: string hash seed, BLAS/OpenMP and torch threads, the CPUs the process
may use (the encoders' automatic thread count follows them) and the generator's `workers`.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

CHILD = """
import os, sys
from pathlib import Path
out, cpus, workers, threads = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if cpus == "one":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
import torch
torch.set_num_threads(threads)
from edgekd.data.fixtures import make_hmdb51, make_ucf101
from edgekd.data.synthetic import generate
from videos import moving_square, write_video
generate(out / "synth", classes=4, videos_per_class=8, frames=16, size=32, seed=3, workers=workers)  # 32: 2 workers
make_ucf101(out / "ucf", per_class=3, frames=8, size=(32, 48))
make_hmdb51(out / "hmdb", per_class=4, frames=8, size=(32, 48))
write_video(out / "square.mp4", moving_square(12, 32, 48))
write_video(out / "square.avi", moving_square(12, 32, 48))
"""


def _generate(out: Path, hash_seed: str, cpus: str, workers: int, threads: int) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", CHILD, str(out), cpus, str(workers), str(threads)], env=env, check=True,
                   timeout=240)
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity (Linux)")
def test_same_seed_same_bytes_in_any_process(tmp_path):
    a = _generate(tmp_path / "a", hash_seed="0", cpus="one", workers=1, threads=1)
    b = _generate(tmp_path / "b", hash_seed="12345", cpus="all", workers=2, threads=2)
    # synth: 32 videos + manifest; ucf: 9 videos, 3 broken, their list, 7 split files; hmdb: 12 + 3 + 1 + 9
    assert len(a) == 33 + 20 + 25 + 2
    assert sorted(a) == sorted(b)
    assert [f for f in a if a[f] != b[f]] == []
    for name in ("square.mp4", "square.avi"):  # bitexact: no library version strings to differ between installs
        assert b"Lavf" not in (tmp_path / "a" / name).read_bytes()
        assert b"Lavc" not in (tmp_path / "a" / name).read_bytes()
