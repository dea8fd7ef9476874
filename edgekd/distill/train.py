"""The training loop of `edgekd distill`: one plain loop, readable top to bottom.

    setup    process group (torchrun), data + labeled/unlabeled split, recipe, teachers, student,
             optimizer, schedule; every bad input fails here, before the first step
    resume   weights, optimizer, schedule, grad scaler, epoch/step, the epoch's loss sums so far and
             best metric
    loop     per step: labeled (+ unlabeled) batch -> student -> recipe loss terms -> backward ->
             clip -> optimizer step; per epoch: test top-1, metrics.jsonl, checkpoint.pt (atomic)
    replay   every random draw is keyed, not carried: step k seeds the RNGs from (seed, k, rank)
             (dropout), and each clip's sampling/augmentation from (seed, epoch, its position)
             (edgekd.distill.data), so a run resumed at any step replays the uninterrupted one
    broken   a video that fails to decode leaves its batch short; a step with no labeled clip left
             (on any rank) takes no optimizer step but still counts, so steps stay positions in the
             epoch's streams and a resume lands where the uninterrupted run was; an epoch without a
             single optimizer step stops the run with a DataError
    stops    Ctrl-C saves a checkpoint at the current step and re-raises; a NaN/inf loss raises
             TrainingDiverged naming the step, leaving the last good checkpoint untouched

A run folder runs/NAME holds config.toml (the resolved config), checkpoint.pt (last epoch, with the
training state; the artifact export and bench read), best.pt (best test top-1, weights only) and
metrics.jsonl (one line per epoch).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekd.checkpoint import load_checkpoint, save_checkpoint
from edgekd.distill import dist
from edgekd.distill.config import DistillConfig, default_run_name, validate
from edgekd.distill.data import RunData, Streams, derive_seed, eval_loader, prepare_data
from edgekd.distill.evaluate import accuracy_metrics, predict
from edgekd.distill.recipes import AUTO, Batch, Recipe, StudentOut, build_recipe, choose_recipe
from edgekd.distill.schedule import Schedule
from edgekd.distill.student_init import apply_backbone_init, read_backbone_init
from edgekd.distill.teacher_bank import TeacherBank, load_teachers
from edgekd.errors import CheckpointError, ConfigError, DataError, TrainingDiverged
from edgekd.io import write_text_atomic
from edgekd.report import Reporter


class DistillModel(nn.Module):
    """What the optimizer trains: the student plus the recipe's projector (if any).

    One forward returns everything a recipe needs, so DDP sees (and synchronizes) every parameter
    through this module's forward.
    """

    def __init__(self, student: nn.Module, projector: nn.Module | None = None):
        super().__init__()
        self.student = student
        self.projector = projector

    def forward(self, x: torch.Tensor, project: bool = False, split: int | None = None) -> tuple:
        """split: run the student on x[:split] and x[split:] in two passes (each BatchNorm normalizes
        each part with its own batch statistics), else on all of x at once."""
        if split is not None and 0 < split < x.shape[0]:
            f = torch.cat([self.student.forward_features(x[:split]), self.student.forward_features(x[split:])])
        else:
            f = self.student.forward_features(x)             # (B, Ds)
        logits = self.student.forward_head(f)                # (B, C)
        p = self.projector(f) if project and self.projector is not None else None  # (B, Dt)
        return f, logits, p


def distill(cfg: DistillConfig, *, teachers: dict | None = None, resume: str | Path | None = None,
            stop_after: int | None = None, reporter: Reporter | None = None) -> Path:
    """Train a student with `cfg.recipe` and return its run folder.

    teachers: role -> ready Teacher objects (otherwise loaded from cfg.teacher); resume: a run folder
    or checkpoint to continue exactly; stop_after: train at most this many epochs in this call (the
    schedule still spans cfg.train.epochs; continue later with resume).
    """
    validate(cfg)
    env, device = dist.setup(cfg.train.device)
    return _distill(cfg, env, device, teachers, resume, stop_after, reporter or Reporter())


def _distill(cfg: DistillConfig, env: dist.DistEnv, device: torch.device, given_teachers, resume,
             stop_after, reporter: Reporter) -> Path:
    if not env.is_main:  # one process speaks for the run
        reporter = Reporter.quiet()
    run, ckpt = _setup(cfg, env, device, given_teachers, resume, reporter)
    at = _resume(run, ckpt)
    _open(run, resume, at)
    t = run.cfg.train
    if at.epoch >= t.epochs:
        reporter.print(f"[green]{run.run_dir} already finished its {t.epochs} epochs[/green]; "
                       "raise --epochs to train on")
        return run.run_dir

    # -- the loop: per epoch, its steps, then metrics, evaluation and checkpoints -------------------
    # (per-epoch summary lines are printed by rank 0 even without the live bar)
    bar_reporter = reporter if run.cfg.run.progress else Reporter.quiet()
    last_metrics: dict[str, Any] = {}
    ctx = StepContext(run.ddp, run.recipe, run.bank, run.streams, run.optimizer, run.scaler, env, device,
                      run.run_dir, t.accum_steps, run.cfg.optim.grad_clip, run.input_format, run.amp_dtype)
    with bar_reporter.bar("train", (t.epochs - at.epoch) * run.spe - at.skip, unit="steps") as progress:
        for epochs_run, epoch in enumerate(range(at.epoch, t.epochs), 1):
            clips, seconds = _train_epoch(run, ctx, epoch, at, progress, last_metrics)
            last_metrics = _end_epoch(run, epoch, at, clips, seconds)
            at.skip, at.trained, at.sums = 0, 0, {}  # the next epoch starts from its first step
            if stop_after is not None and epochs_run >= stop_after and epoch + 1 < t.epochs:
                reporter.print(f"stopped after {epochs_run} epoch(s) as asked; continue with "
                               f"`edgekd distill --resume {run.run_dir}`")
                break
    _finish(run, last_metrics)
    return run.run_dir


@dataclasses.dataclass
class _Run:
    """What one training run holds from setup to its last epoch (built by `_setup`, then `_open`)."""

    cfg: DistillConfig
    env: dist.DistEnv
    device: torch.device
    reporter: Reporter
    data: RunData
    recipe: Recipe
    bank: TeacherBank
    model: DistillModel
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scaler: torch.amp.GradScaler
    streams: Streams
    input_format: torch.memory_format | None
    amp_dtype: torch.dtype | None
    best: dict[str, Any] = dataclasses.field(default_factory=lambda: {"top1": -1.0, "epoch": -1})
    ddp: nn.Module | None = None  # the model, or its DistributedDataParallel wrapper
    test_loader: Any = None  # rank 0 only
    run_dir: Path | None = None
    tb: Any = None  # TensorBoard writer, if asked for

    @property
    def spe(self) -> int:
        return self.streams.steps

    def save(self, epoch: int, step: int, metrics: dict[str, Any], path: Path | None = None, state: bool = True,
             epoch_sums: dict[str, float] | None = None, epoch_steps: int = 0) -> None:
        """checkpoint.pt resumes at (epoch, step); epoch_sums: the loss sums of the `epoch_steps` optimizer
        steps among that epoch's first `step` steps (rank 0's under DDP). No RNG state: every draw is keyed
        by (seed, epoch, step). skipped: the videos found broken so far, never decoded again after resume."""
        projector, student = self.model.projector, self.model.student
        train_state = None if not state else {
            "epoch": epoch, "step": step, "steps_per_epoch": self.spe, "recipe": self.recipe.name,
            "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(), "projector": None if projector is None else projector.state_dict(),
            "epoch_sums": dict(epoch_sums or {}), "epoch_steps": epoch_steps,
            "best_top1": self.best["top1"], "best_epoch": self.best["epoch"],
            "skipped": [list(v) for v in self.data.manifest.skipped], "world_size": self.env.world_size}
        save_checkpoint(path or self.run_dir / "checkpoint.pt", student_name=self.cfg.student.name,
                        student_kwargs=student.config, state_dict=student.state_dict(), data_spec=self.data.spec,
                        config=self.cfg.to_dict(), metrics=metrics, train_state=train_state)


@dataclasses.dataclass
class _Position:
    """Where training stands: the epoch, steps of it passed, optimizer steps among them and their loss sums."""

    epoch: int = 0
    skip: int = 0
    trained: int = 0
    sums: dict[str, float] = dataclasses.field(default_factory=dict)


# -- setup: everything that can fail on bad input happens before the first step ------------------

def _setup(cfg: DistillConfig, env: dist.DistEnv, device: torch.device, given_teachers, resume,
           reporter: Reporter) -> tuple[_Run, dict | None]:
    """Data, recipe, teachers, student, optimizer and schedule; the checkpoint to resume from (or None)."""
    from edgekd.students import build_student

    log, t = reporter.print, cfg.train
    if cfg.run.tensorboard and env.is_main:
        _tensorboard_writer()  # fail now, not after the run folder exists
    init_state = None if not cfg.student.init else read_backbone_init(cfg.student.init, cfg.student.name,
                                                                      cfg.student.kwargs())
    with dist.main_first(env):  # rank 0 generates/caches datasets and teachers, the others read them
        data = prepare_data(cfg, reporter)
        if cfg.recipe.name == AUTO:
            name, why = choose_recipe(cfg, data.manifest, unlabeled=len(data.unlabeled.entries))
            cfg = dataclasses.replace(cfg, recipe=dataclasses.replace(cfg.recipe, name=name))
            log(f"recipe {name} (auto): {why}")
            validate(cfg)  # what the chosen recipe needs (two stages: two epochs)
        recipe = build_recipe(cfg)
        ckpt = _load_resume(resume, cfg, recipe) if resume is not None else None
        bank = load_teachers(cfg, recipe, data.manifest, data.split, data.spec, given_teachers, reporter, str(device))
    bank.to(device)
    recipe.prepare(data, bank, cfg, log)  # e.g. TimeBalance's fixed per-video s, before the student exists

    # Seed after the teachers: a teacher-cache hit or miss must not change the student's init.
    _seed_all(t.seed)
    student = build_student(cfg.student.name, num_classes=data.spec.num_classes, frames=data.spec.frames,
                            size=data.spec.size, **cfg.student.kwargs())
    if init_state is not None:
        loaded = apply_backbone_init(student, init_state, cfg.student.init)
        log(f"student backbone: {loaded} tensors from {cfg.student.init}")
    model = DistillModel(student, recipe.make_projector(student, bank)).to(device)
    input_format = _channels_last(model) if t.channels_last else None
    optimizer = _make_optimizer(cfg.optim, model)
    streams = Streams(cfg, data, env, recipe.clips_per_video(), fixed_starts=bank.cache is not None)
    schedule = Schedule(cfg.optim, streams.steps, t.epochs, restart_epoch=recipe.stage1_epochs)
    amp_dtype = _amp_dtype(device, t.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    run = _Run(cfg, env, device, reporter, data, recipe, bank, model, optimizer, schedule, scaler, streams,
               input_format, amp_dtype)
    return run, ckpt


def _open(run: _Run, resume, at: _Position) -> None:
    """The DDP wrapper, the test loader, the run folder (config.toml, header) and TensorBoard."""
    cfg, env, device = run.cfg, run.env, run.device
    run.ddp = run.model
    if env.enabled:
        run.ddp = nn.parallel.DistributedDataParallel(
            run.model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=run.recipe.two_stage)  # stage 1 leaves the head unused, stage 2 the projector
    run.test_loader = eval_loader(cfg, run.data.test, run.data.spec) if env.is_main else None
    run.run_dir = _run_dir(cfg, resume, env)
    if env.is_main:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run.run_dir / "config.toml", cfg.to_toml())
        _print_header(run.reporter, cfg, run.run_dir, run.data, run.recipe, run.bank, run.model.student, run.spe,
                      env, device, at.epoch, at.skip)
    run.tb = _tensorboard_writer()(str(run.run_dir / "tb")) if (cfg.run.tensorboard and env.is_main) else None


# -- one epoch --------------------------------------------------------------------------------------

def _train_epoch(run: _Run, ctx: StepContext, epoch: int, at: _Position, progress,
                 last_metrics: dict[str, Any]) -> tuple[int, float]:
    """The steps of one epoch from `at.skip` on, tallied into `at`; (clips trained on, seconds).

    Ctrl-C saves a checkpoint at the current step and re-raises."""
    t, env, spe, recipe = run.cfg.train, run.env, run.spe, run.recipe
    stage = recipe.stage(epoch)
    run.model.train()
    # steps_done: steps of this epoch passed; at.trained: those that took an optimizer step; at.sums: their loss terms
    steps_done, clips, t0 = at.skip, 0, time.perf_counter()
    try:
        for k, lab, unl in run.streams.epoch(epoch, recipe.uses_unlabeled(stage), at.skip):
            step = epoch * spe + k
            if _on_every_rank(lab is not None, env, run.device):  # else every labeled video of the step failed
                lr = run.schedule.lr(step)
                for g in run.optimizer.param_groups:
                    g["lr"] = lr
                _seed_all(derive_seed(t.seed, step, env.rank))  # dropout etc. of this step, whatever ran before
                terms, stats, n = _train_step(ctx, lab, unl, stage, where=f"epoch {epoch + 1} step "
                                              f"{k + 1} (global step {step + 1})")
                at.trained += 1
                clips += n
                for name, v in {**terms, **stats}.items():
                    at.sums[name] = at.sums.get(name, 0.0) + v
                note = _step_note(terms, stats, clips * env.world_size / (time.perf_counter() - t0))
            else:
                note = "no labeled clip decoded: step skipped"
            steps_done = k + 1
            progress.describe(f"epoch {epoch + 1}/{t.epochs}" + (f" stage {stage}" if recipe.two_stage else ""))
            progress.advance(1, note=note)
    except KeyboardInterrupt:
        if env.is_main:
            run.save(epoch, steps_done, {**last_metrics, "interrupted": True}, epoch_sums=at.sums,
                     epoch_steps=at.trained)
            run.reporter.print(f"[yellow]interrupted at epoch {epoch + 1} step {steps_done}: saved "
                               f"{run.run_dir / 'checkpoint.pt'}[/yellow]; continue with "
                               f"`edgekd distill --resume {run.run_dir}`")
        raise
    return clips, time.perf_counter() - t0


def _end_epoch(run: _Run, epoch: int, at: _Position, clips: int, seconds: float) -> dict[str, Any]:
    """The epoch's metrics (+ test top-1 when due), best.pt, checkpoint.pt, metrics.jsonl, TensorBoard."""
    env, data, epochs = run.env, run.data, run.cfg.train.epochs
    if not at.trained:
        raise _no_step_error(epoch, data, run.run_dir if env.is_main else None)
    # the mean over the optimizer steps of the whole epoch, both halves of a resumed one
    means = dist.all_mean(env, {k: v / at.trained for k, v in at.sums.items()}, run.device)
    loss_terms = [k for k in means if k not in ("keep", "s")]
    train_loss = sum(means[k] for k in loss_terms)
    run.schedule.epoch_end(epoch, train_loss)
    stage = {"stage": run.recipe.stage(epoch)} if run.recipe.two_stage else {}
    metrics: dict[str, Any] = {"epoch": epoch + 1, **stage,
                               "step": (epoch + 1) * run.spe, "optimizer_steps": at.trained,
                               "lr": run.optimizer.param_groups[0]["lr"], "loss": train_loss,
                               **{f"loss_{k}": means[k] for k in loss_terms},
                               **{k: means[k] for k in ("keep", "s") if k in means},
                               "clips_per_s": clips * env.world_size / max(seconds, 1e-9),
                               "epoch_s": seconds}
    if env.is_main and ((epoch + 1) % run.cfg.train.eval_every == 0 or epoch + 1 == epochs):
        _evaluate(run, epoch, metrics)
    metrics.update(best_top1=run.best["top1"], best_epoch=run.best["epoch"], time=time.strftime("%Y-%m-%dT%H:%M:%S"))
    if env.is_main:
        run.save(epoch + 1, 0, metrics)
        data.manifest.skipped.write(run.run_dir)  # skipped_videos.txt: every video skipped so far
        with open(run.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(metrics) + "\n")
        if run.tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and k not in ("epoch", "step"):
                    run.tb.add_scalar(k, v, epoch + 1)
            run.tb.flush()
        run.reporter.print(_epoch_line(metrics, epochs))
    dist.barrier(env)
    return metrics


def _evaluate(run: _Run, epoch: int, metrics: dict[str, Any]) -> None:
    """Test top-1/top-5 into `metrics`; a new best is saved as best.pt (weights only)."""
    logits, labels = predict(run.model.student, run.test_loader, run.device, amp=run.amp_dtype is not None,
                             channels_last=run.input_format is not None)
    acc = accuracy_metrics(logits, labels, list(run.data.spec.class_names))
    metrics.update(top1=acc["top1"], top5=acc["top5"])
    if acc["top1"] > run.best["top1"]:
        run.best = {"top1": acc["top1"], "epoch": epoch + 1}
        run.save(epoch + 1, 0, {**metrics, "best_top1": run.best["top1"], "best_epoch": run.best["epoch"]},
                 path=run.run_dir / "best.pt", state=False)


def _finish(run: _Run, last_metrics: dict[str, Any]) -> None:
    if run.tb is not None:
        run.tb.close()
    if run.env.is_main and last_metrics.get("epoch") == run.cfg.train.epochs:
        best = run.best
        run.reporter.print(f"[bold green]done[/bold green] {run.run_dir}: test top-1 "
                           f"{100 * last_metrics.get('top1', 0):.1f}% (best {100 * best['top1']:.1f}% at epoch "
                           f"{best['epoch']})")


# -- one optimizer step ---------------------------------------------------------------------------

def _make_batch(lab: dict, unl: dict | None, part: int, parts: int, device, input_format, n_clips: int,
                lab_ds, unl_ds) -> Batch:
    """Micro-batch `part` of `parts`: every parts-th video of each stream, labeled ones first.

    Interleaving matches how DDP's strided sampler deals a global batch to ranks, so accumulation
    over k micro-batches reproduces a k-process run.
    """
    streams = [(lab, lab_ds)] + ([(unl, unl_ds)] if unl is not None else [])
    videos, ids, starts = [], [], []
    for b, ds in streams:
        sel = slice(part, None, parts)
        v = b["video"][sel]
        videos.append(v if v.dim() == 6 else v.unsqueeze(1))  # (b, n, 3, T, H, W)
        ids += [ds.entries[i].video_id for i in b["index"][sel].tolist()]
        starts.append(b["starts"][sel].reshape(len(v), -1))
    clips = torch.cat(videos).to(device, non_blocking=True)    # (B, n, 3, T, H, W)
    x = clips[:, 0]
    if input_format is not None:
        x = x.contiguous(memory_format=input_format)
    labels = lab["label"][part::parts].to(device)
    return Batch(x=x, labels=labels, clips=clips if n_clips > 1 else None, video_ids=ids,
                 starts=torch.cat(starts))


@dataclasses.dataclass
class StepContext:
    """What every optimizer step uses; fixed for the run."""

    model: nn.Module  # DistillModel, or its DistributedDataParallel wrapper
    recipe: Recipe
    bank: TeacherBank
    streams: Streams
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    env: dist.DistEnv
    device: torch.device
    run_dir: Path  # named by the divergence error
    accum: int = 1  # micro-batches per optimizer step
    grad_clip: float = 0.0  # max grad norm; 0 = no clipping
    input_format: torch.memory_format | None = None  # channels-last for the clips, or None
    amp_dtype: torch.dtype | None = None  # autocast dtype, or None for fp32


def _train_step(ctx: StepContext, lab: dict, unl: dict | None, stage: int, where: str):
    """Forward/backward over `ctx.accum` micro-batches, then one clipped optimizer step.

    Returns (mean loss terms, mean stats, clips seen by the student).
    """
    ddp, recipe, accum, device = ctx.model, ctx.recipe, ctx.accum, ctx.device
    single = not isinstance(ddp, nn.parallel.DistributedDataParallel)
    ctx.optimizer.zero_grad(set_to_none=True)
    terms_sum: dict[str, float] = {}
    stats_sum: dict[str, float] = {}
    clips = 0
    for part in range(accum):
        batch = _make_batch(lab, unl, part, accum, device, ctx.input_format, recipe.clips_per_video(),
                            ctx.streams.labeled, ctx.streams.unlabeled)
        sync = contextlib.nullcontext() if (part == accum - 1 or single) else ddp.no_sync()
        with sync:
            with torch.autocast(device.type, dtype=ctx.amp_dtype or torch.float32, enabled=ctx.amp_dtype is not None):
                f, logits, proj = ddp(batch.x, project=recipe.projects(stage),
                                      split=batch.n_labeled if recipe.separate_passes() else None)
                ctx.bank.new_step()
                terms, stats = recipe.losses(StudentOut(f, logits, proj), batch, ctx.bank, stage)
                loss = sum(terms.values())
            _check_finite(loss, ctx, where, {k: float(v.detach()) for k, v in terms.items()})
            ctx.scaler.scale(loss / accum).backward()
        for k, v in terms.items():
            terms_sum[k] = terms_sum.get(k, 0.0) + float(v.detach()) / accum
        for k, v in stats.items():
            stats_sum[k] = stats_sum.get(k, 0.0) + v / accum
        clips += batch.x.shape[0]
    ctx.scaler.unscale_(ctx.optimizer)
    params = [p for g in ctx.optimizer.param_groups for p in g["params"]]
    norm = torch.nn.utils.clip_grad_norm_(params, ctx.grad_clip if ctx.grad_clip > 0 else math.inf)
    if not ctx.scaler.is_enabled():  # with an fp16 scaler, inf grads just skip the step
        _check_finite(norm, ctx, where, {"grad_norm": float(norm)})
    with _defer_sigint():
        ctx.scaler.step(ctx.optimizer)
        ctx.scaler.update()
    return terms_sum, stats_sum, clips


@contextlib.contextmanager
def _defer_sigint():
    """Hold Ctrl-C while the optimizer updates the weights, so a checkpoint never holds half a step."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *a: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _on_every_rank(ok: bool, env: dist.DistEnv, device: torch.device) -> bool:
    """Whether `ok` holds on every rank: all ranks take a step together or skip it together."""
    if not env.enabled:
        return ok
    flag = torch.tensor(1.0 if ok else 0.0, device=device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
    return bool(flag.item())


def _no_step_error(epoch: int, data, run_dir: Path | None) -> DataError:
    """An epoch in which no step had a labeled clip that decodes: say how many labeled videos failed."""
    skipped = data.manifest.skipped
    bad = sum(str(e.path) in skipped for e in data.labeled.entries)
    listed = f" (listed in {skipped.write(run_dir)})" if run_dir is not None and bad else ""
    return DataError(f"epoch {epoch + 1} took no optimizer step: {bad} of the {len(data.labeled.entries)} labeled "
                     f"videos fail to decode{listed} and no step had a labeled clip left",
                     "fix or remove the broken videos (`edgekd data check`), or label more videos (--labeled)")


def _check_finite(value: torch.Tensor, ctx: StepContext, where: str, detail: dict[str, float]) -> None:
    """Raise TrainingDiverged on every rank when any rank sees a NaN/inf (so none hangs in a collective)."""
    if not _on_every_rank(bool(torch.isfinite(value.detach()).all()), ctx.env, ctx.device):
        ckpt = ctx.run_dir / "checkpoint.pt"
        kept = f"the last good checkpoint {ckpt} is intact" if ckpt.is_file() else "no checkpoint was written yet"
        shown = ", ".join(f"{k}={v:.4g}" for k, v in detail.items())
        raise TrainingDiverged(f"training diverged at {where}: non-finite loss ({shown}); {kept}",
                               "lower optim.lr, keep optim.grad_clip > 0, or turn off train.amp; "
                               "then --resume from the checkpoint or start over")


# -- setup helpers ----------------------------------------------------------------------------------

def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _make_optimizer(o, model: nn.Module) -> torch.optim.Optimizer:
    """Adam(W) with weight decay on weight matrices/kernels only (not norms, biases: nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return cls(groups, lr=o.lr, betas=tuple(o.betas))


def _amp_dtype(device: torch.device, amp: bool):
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _channels_last(model: nn.Module):
    """Put conv weights in channels-last; return the memory format for inputs (or None).

    For 3D convolutions this pays on CPU too: oneDNN's channels-last Conv3d backward runs about 2.4x
    faster than the contiguous one for tiny3d at 8x64x64 (measured on the 2-core build machine).
    """
    fmt = None
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            m.to(memory_format=torch.channels_last_3d)
            fmt = torch.channels_last_3d
        elif isinstance(m, nn.Conv2d):  # 2D students (TSM) reshape to 4-D inside
            m.to(memory_format=torch.channels_last)
    return fmt


def _load_resume(resume: str | Path, cfg: DistillConfig, recipe: Recipe) -> dict:
    """The checkpoint to continue from, checked against this run's student and recipe."""
    ckpt = load_checkpoint(resume)
    state = ckpt.get("train_state")
    if not state:
        raise CheckpointError(f"{resume} holds no training state (a best.pt or exported checkpoint?)",
                              "resume from the run folder's checkpoint.pt")
    name = ckpt["student"]["name"]
    if name != cfg.student.name:
        raise CheckpointError(f"{resume} was trained with student {name!r}, this run asks for {cfg.student.name!r}",
                              f"drop --student (resume keeps {name!r}) or start a new run without --resume")
    if state.get("recipe") != recipe.name:
        raise CheckpointError(f"{resume} was trained with recipe {state.get('recipe')!r}, this run asks for "
                              f"{recipe.name!r}", "drop --recipe when resuming, or start a new run")
    return ckpt


def _resume(run: _Run, ckpt: dict | None) -> _Position:
    """Restore the checkpoint's training state into the run; where to start (the beginning without one)."""
    if ckpt is None:
        return _Position()
    state, model, schedule = ckpt["train_state"], run.model, run.schedule
    try:
        model.student.load_state_dict(ckpt["state_dict"])
        if model.projector is not None and state.get("projector") is not None:
            model.projector.load_state_dict(state["projector"])
        run.optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise CheckpointError(f"checkpoint does not fit this run's student/optimizer: {str(e).splitlines()[0]}",
                              "resume with the run's own config (drop the flags that change the model)") from e
    if state.get("steps_per_epoch") != schedule.spe:
        raise CheckpointError(f"the checkpoint ran {state.get('steps_per_epoch')} steps per epoch, this config "
                              f"gives {schedule.spe}", "keep the data, split and batch sizes of the run")
    schedule.load_state_dict(state["schedule"])
    if state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    sums = {k: float(v) for k, v in (state.get("epoch_sums") or {}).items()} if state["step"] else {}
    # optimizer steps of the epoch so far (older checkpoints: every step trained)
    trained = int(state.get("epoch_steps", state["step"])) if state["step"] else 0
    run.best = {"top1": float(state["best_top1"]), "epoch": int(state["best_epoch"])}
    run.data.manifest.skipped.add(map(tuple, state.get("skipped", [])))  # never decoded again
    return _Position(int(state["epoch"]), int(state["step"]), trained, sums)


def run_is_taken(path: Path) -> bool:
    return (path / "checkpoint.pt").exists() or (path / "config.toml").exists()


def _run_dir(cfg: DistillConfig, resume, env) -> Path:
    """The run folder: the resumed one, --name (must be new), or an automatic free name."""
    if resume is not None:
        p = Path(resume)
        return p if p.is_dir() else p.parent
    base = Path(cfg.run.dir)
    if cfg.run.name:
        path = base / cfg.run.name
        if env.is_main and run_is_taken(path):
            raise ConfigError(f"run folder {path} already holds a run",
                              f"continue it with --resume {path}, or pick another --name")
        return path
    name = default_run_name(cfg)
    path, i = base / name, 2
    while run_is_taken(path):
        path, i = base / f"{name}-{i}", i + 1
    return Path(dist.broadcast(env, str(path)))


def _tensorboard_writer():
    """torch's SummaryWriter class (lazy import: tensorboard is an optional dependency)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ConfigError("run.tensorboard=true needs the tensorboard package",
                          "pip install tensorboard, or drop --tensorboard") from e
    return SummaryWriter


def _print_header(reporter: Reporter, cfg, run_dir, data, recipe, bank, student, spe, env, device, start_epoch, skip) -> None:
    from rich.table import Table

    n_params = sum(p.numel() for p in student.parameters())
    s = data.spec
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold cyan")
    table.add_column()
    resuming = f"  (resuming at epoch {start_epoch + 1}, step {skip}" + (
        "; CUDA kernels are not deterministic, so the replay is close, not bit-equal)" if device.type == "cuda" else ")")
    table.add_row("run", str(run_dir) + (resuming if start_epoch or skip else ""))
    table.add_row("recipe", f"{recipe.name}: {recipe.summary}")
    table.add_row("student", f"{cfg.student.name} ({n_params / 1e6:.2f} M params), clips {s.frames}x{s.size}x{s.size} "
                  f"stride {s.frame_stride}")
    table.add_row("data", f"{cfg.data.path or 'synthetic (embedded)'}: {len(data.labeled.entries)} labeled / "
                  f"{len(data.unlabeled.entries)} unlabeled train videos, {len(data.test.entries)} test, "
                  f"{s.num_classes} classes")
    if bank.teachers:
        roles = ", ".join(f"{r}={type(tt).__name__}" + (f" (head: {tt.head_source})" if getattr(tt, "head_source", None) else "")
                          for r, tt in bank.teachers.items())
        table.add_row("teachers", roles + (f" (cache {cfg.teacher.cache})" if bank.cache is not None else ""))
    t = cfg.train
    table.add_row("train", f"{t.epochs} epochs x {spe} steps, batch {t.batch_size} labeled + "
                  f"{t.unlabeled_batch_size} unlabeled, {cfg.optim.name} lr {cfg.optim.lr:g} {cfg.optim.schedule}, "
                  f"{device}" + (f", {env.world_size} processes" if env.enabled else ""))
    reporter.print(table)


def _step_note(terms: dict, stats: dict, clips_per_s: float) -> str:
    return f"{clips_per_s:.1f} clips/s " + " ".join(f"{k} {v:.3f}" for k, v in {**terms, **stats}.items())


def _epoch_line(m: dict, epochs: int) -> str:
    terms = " ".join(f"{k[5:]} {v:.3f}" for k, v in m.items() if k.startswith("loss_"))
    extra = "".join(f"  {k} {m[k]:.2f}" for k in ("keep", "s") if k in m)
    acc = (f"  top-1 {100 * m['top1']:.1f}% (best {100 * m['best_top1']:.1f}%)" if "top1" in m else "")
    return (f"epoch {m['epoch']:>3}/{epochs}  loss {m['loss']:.4f} ({terms}){extra}{acc}  "
            f"{m['clips_per_s']:.1f} clips/s  lr {m['lr']:.2e}  {m['epoch_s']:.1f}s")


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The metrics.jsonl lines of a run (one per epoch)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
