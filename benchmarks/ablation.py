"""Ablation on the embedded synthetic dataset: supervised baseline vs every recipe at 5% and 10% labels.

    python benchmarks/ablation.py                      # same as `edgekd ablate`
    python benchmarks/ablation.py --seeds 0,1,2        # mean ± std over seeds
    python benchmarks/ablation.py --out runs/ablation  # runs, ablation.md and ablation.json go here

Same student (tiny3d), same budget (epochs x steps, batch sizes), same seed for every row; the
embedded teachers are built once per split and cached. Finished runs are reused, so re-running
only fills in what is missing. The measured table goes into docs/ablation.md.
"""

import sys

from edgekd.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["ablate", *sys.argv[1:]]))
