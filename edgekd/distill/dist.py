"""Distributed data parallel, set up from the environment `torchrun` writes.

`torchrun --nproc-per-node N -m edgekd distill ...` starts N processes with RANK, LOCAL_RANK and
WORLD_SIZE set; without them this is a single process (rank 0 of 1) and nothing is initialized.
NCCL on CUDA, gloo on CPU. Only rank 0 writes files and shows progress.
"""

from __future__ import annotations

import atexit
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as tdist

from edgekd.errors import ConfigError


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, env: DistEnv = DistEnv()) -> torch.device:
    """--device auto|cpu|cuda|cuda:N as a torch.device; under torchrun each rank takes its own GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name}: CUDA is not available here",
                              "use --device cpu (or auto); in a config, train.device")
        if env.enabled:  # one GPU per process
            return torch.device("cuda", env.local_rank)
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"unknown device {name!r}", "use auto, cpu, cuda or cuda:N") from e


def setup(device_name: str) -> tuple[DistEnv, torch.device]:
    """Read torchrun's environment and join the process group; a single process returns rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        env = DistEnv()
        return env, resolve_device(device_name, env)
    env = DistEnv(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)
    device = resolve_device(device_name, env)
    if not tdist.is_initialized():  # once per process: `edgekd distill` may train a baseline after
        if device.type == "cuda":
            torch.cuda.set_device(device)
        tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_teardown)
    return env, device


def _teardown() -> None:
    if tdist.is_initialized():
        tdist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.enabled:
        tdist.barrier()


@contextmanager
def main_first(env: DistEnv) -> Iterator[None]:
    """Rank 0 runs the block first (e.g. builds a cache), the others after it, from the cache."""
    if not env.is_main:
        barrier(env)
    yield
    if env.is_main:
        barrier(env)


def broadcast(env: DistEnv, obj: Any) -> Any:
    """Rank 0's value of a picklable object on every rank."""
    if not env.enabled:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


def all_mean(env: DistEnv, values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average scalar diagnostics over ranks (for logging only)."""
    if not env.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    tdist.all_reduce(t)
    return {k: float(v) / env.world_size for k, v in zip(keys, t.tolist())}
