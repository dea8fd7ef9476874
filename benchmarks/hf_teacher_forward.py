"""Teacher-forward cost per clip of each Hugging Face video family at the tests' tiny configs.

The models are tests/teachers/hf_video_tiny.py's (random weights, 1 layer, 4 frames at 24 px, bare
encoder and video classifier), loaded with load_teacher and fed the synthetic set's 16x32x32 clips,
so the cost includes converting the student's clip to the teacher's own input.

    python benchmarks/hf_teacher_forward.py --batch 8 --repeats 20 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "teachers"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch
    from hf_video_tiny import CONFIGS, hf_video_dir

    from edgekd.data.spec import DataSpec
    from edgekd.teachers import load_teacher

    torch.set_num_threads(args.threads)
    spec = DataSpec(frames=16, size=32, class_names=("a", "b", "c", "d"))
    x = torch.randn(spec.input_shape(args.batch))
    print(f"{'family':12} {'model':32} {'ms/clip':>8}  (batch {args.batch}, median of {args.repeats}, "
          f"{args.threads} threads, {torch.__version__})")
    with tempfile.TemporaryDirectory() as tmp:
        for family in CONFIGS:
            for labels in (None, list(spec.class_names)):
                teacher = load_teacher(hf_video_dir(Path(tmp) / f"{family}{bool(labels)}", family, labels), spec)
                fn = teacher.logits if labels else teacher.embed
                fn(x)                                                     # warm-up
                times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    fn(x)
                    times.append(time.perf_counter() - t0)
                ms = sorted(times)[len(times) // 2] * 1000 / args.batch
                print(f"{family:12} {teacher.config['class']:32} {ms:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
