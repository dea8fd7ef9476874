"""The CLI end to end (flags, baseline comparison, eval) and a 2-process gloo DDP run."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from edgekd.cli.distill import RECIPE_NAMES
from edgekd.cli.main import main
from edgekd.distill.config import load_config
from edgekd.distill.recipes import RECIPES
from edgekd.distill.train import distill, read_metrics


def set_flags(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def test_cli_recipe_names_match_the_registry():
    assert sorted(RECIPE_NAMES) == RECIPES.names()


def test_cli_distill_with_baseline_then_eval(overrides, tmp_path, capsys):
    # a 1-epoch supervised run serves as the KD teacher (any edgekd checkpoint can teach)
    teacher = distill(load_config(None, overrides + ["recipe.name=supervised", "train.epochs=1", "run.name=teacher"]))
    flags = set_flags([o for o in overrides if not o.startswith("run.baseline")])
    code = main(["distill", "--recipe", "kd", "--epochs", "2", "--name", "kd", *flags,
                 "--set", f"teacher.kd={teacher}"])
    assert code == 0
    out = capsys.readouterr().out
    assert "supervised" in out and "kd" in out and "points top-1 over the supervised baseline" in out
    runs = tmp_path / "runs"
    assert len(read_metrics(runs / "kd")) == 2 and len(read_metrics(runs / "kd-baseline")) == 2
    assert main(["eval", str(runs / "kd"), "--clips", "1", "--crops", "1", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "per-class accuracy" in out and (runs / "kd" / "confusion.png").is_file()


def test_ddp_two_gloo_processes_match_one_process(overrides, tmp_path):
    """2 processes x 2 clips == 1 process x 4 clips in 2 interleaved micro-batches (accum_steps=2).

    The parameters match to float summation order: all-reduce and accumulation add gradients in a
    different order, and Adam's division by sqrt(v) amplifies that on small gradients (measured up to
    3.7e-6 on weights of magnitude 0.05 after 2 epochs), so we allow 1e-5. BatchNorm running statistics
    do not: DDP broadcasts rank 0's buffers each step, so they come from rank 0's half only. Dropout
    is off (each rank draws its own mask) and clips are centre clips (augmentations draw per worker).
    """
    base = overrides + ["student.dropout=0"]
    teacher = distill(load_config(None, base + ["recipe.name=supervised", "train.epochs=1", "run.name=teacher"]))
    common = base + ["recipe.name=kd", f"teacher.kd={teacher}", "train.epochs=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "edgekd",
           "distill", "--name", "ddp", *set_flags(common)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 processes" in proc.stderr
    single = distill(load_config(None, common + ["run.name=single", "train.accum_steps=2"]))
    ddp_w = torch.load(tmp_path / "runs" / "ddp" / "checkpoint.pt", weights_only=True)["state_dict"]
    one_w = torch.load(single / "checkpoint.pt", weights_only=True)["state_dict"]
    params = [k for k in one_w if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert len(params) > 10
    for k in params:
        torch.testing.assert_close(ddp_w[k], one_w[k], rtol=0, atol=1e-5, msg=k)
    assert [round(m["loss"], 5) for m in read_metrics(tmp_path / "runs" / "ddp")] == \
           [round(m["loss"], 5) for m in read_metrics(single)]
