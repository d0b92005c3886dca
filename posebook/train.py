"""One Trainer for every chapter: device, mixed precision, seeded data, progress bar, history, checkpoints, resume.

Usage::

    trainer = Trainer(model, train_set, loss_fn, steps=2000, batch_size=32, optimizer="adam", lr=1e-3,
                      schedule="multistep", milestones=(1500, 1800), warmup_steps=100,
                      validate=lambda m: evaluate(m, val_set), val_every=500)
    history = trainer.fit()               # list of dicts: step, loss, lr, samples_per_s, + validation metrics
    trainer.save(path); trainer.load(path)   # exact resume: weights, optimizer, scheduler, scaler, RNGs, data position
    trainer = load_or_train(trainer, "03_stacked_hourglass", config)   # notebooks: load a cached run or train it

The batch is the dataset's item dict (``image``, ``target``, ``target_weight``, ``meta``); the loss is called as
``loss_fn(model(image), target, target_weight)``, so multi-output models train through their loss (a list of outputs).
Item ``i`` of epoch ``e`` is fetched with every RNG seeded from (seed, e, i), so augmentation is reproducible with any
number of workers and a resumed run sees exactly the batches the uninterrupted one would. On CUDA the Trainer uses
mixed precision (bf16 where supported, else fp16 with a GradScaler) and channels_last; on CPU, neither.
Explained in chapter 03 (Stacked Hourglass).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import posebook
from posebook._io import atomic_write

FORMAT = "posebook.train/1"
OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = ("constant", "multistep", "cosine")
_ON_DEVICE = ("image", "target", "target_weight")


# ---- seeding and RNG state ------------------------------------------------------------------------------------

def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached)}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---- data: epochs of seeded positions -----------------------------------------------------------------------

class _SeededItems(Dataset):
    """Wraps a dataset so that item (epoch, i) is fetched with every RNG seeded from (seed, epoch, i)."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, position):
        epoch, index = position
        seed_everything(int(np.random.SeedSequence([self.seed, epoch, index]).generate_state(1)[0]))
        return self.dataset[index]


def epoch_order(num_items: int, seed: int, epoch: int) -> list[int]:
    """The shuffled item order of one epoch: a pure function of (seed, epoch)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_items, generator=generator).tolist()


# ---- optimizer and schedule ------------------------------------------------------------------------------------

def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam, AdamW, RMSprop (Torch7's alpha 0.99, eps 1e-8, as the Hourglass recipe) or SGD with momentum 0.9."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-8, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"optimizer={name!r} is unknown; expected one of {OPTIMIZERS} or a torch optimizer")


def lr_factor(step: int, steps: int, schedule: str, milestones: Sequence[int] = (), gamma: float = 0.1,
              warmup_steps: int = 0, warmup_factor: float = 0.001) -> float:
    """The multiplier of the base LR at ``step``: linear warmup, then constant, step-wise (x gamma) or cosine."""
    if schedule == "multistep":
        factor = gamma ** sum(step >= m for m in milestones)
    elif schedule == "cosine":
        factor = 0.5 * (1 + math.cos(math.pi * min(step, steps) / max(steps, 1)))
    elif schedule == "constant":
        factor = 1.0
    else:
        raise ValueError(f"schedule={schedule!r} is unknown; expected one of {SCHEDULES}")
    if step < warmup_steps:
        factor *= warmup_factor + (1 - warmup_factor) * step / warmup_steps
    return factor


# ---- checkpoints -----------------------------------------------------------------------------------------------

def atomic_save(obj, path: str | os.PathLike) -> Path:
    """torch.save to a temporary file in the same folder, then os.replace: the file is whole or absent."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a Trainer checkpoint (weights_only); a missing, truncated or foreign file raises naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"checkpoint {path} cannot be read (truncated or not a torch file): "
                         f"{type(err).__name__}: {err}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"checkpoint {path} is not a posebook Trainer checkpoint (expected format {FORMAT!r}; "
                         f"found {found})")
    return ckpt


# ---- the Trainer -----------------------------------------------------------------------------------------------

class Trainer:
    """Train ``model`` on ``dataset`` (item dicts) with ``loss_fn(outputs, target, target_weight)`` for ``steps``.

    ``optimizer`` is a name in OPTIMIZERS or a torch optimizer; ``schedule`` in SCHEDULES (``milestones`` in steps
    for multistep); ``validate(model) -> dict`` runs every ``val_every`` steps and at the end, in eval mode; with
    ``checkpoint`` set the state is saved every ``checkpoint_every`` steps and at the end. ``amp`` and
    ``channels_last`` default to on for CUDA, off on CPU. Chapter 03.
    """

    def __init__(self, model: nn.Module, dataset, loss_fn: Callable, *, steps: int, batch_size: int = 32,
                 optimizer: str | torch.optim.Optimizer = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                 schedule: str = "constant", milestones: Sequence[int] = (), gamma: float = 0.1,
                 warmup_steps: int = 0, validate: Callable[[nn.Module], dict] | None = None,
                 val_every: int | None = None, log_every: int = 10, seed: int = 0, num_workers: int = 0,
                 device: torch.device | str | None = None, amp: bool | None = None,
                 channels_last: bool | None = None, grad_clip: float | None = None,
                 checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
                 progress: bool = True, plot: bool = False):
        if steps < 1 or batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got steps={steps}, batch_size={batch_size}")
        if len(dataset) < batch_size:
            raise ValueError(f"the dataset has {len(dataset)} items, fewer than one batch of {batch_size}")
        self.device = torch.device(device) if device is not None else posebook.device()
        cuda = self.device.type == "cuda"
        self.amp_dtype = self._amp_dtype(cuda if amp is None else amp)
        self.channels_last = cuda if channels_last is None else channels_last
        self.model = model.to(self.device, memory_format=torch.channels_last if self.channels_last
                              else torch.preserve_format)
        self.dataset, self.loss_fn = dataset, loss_fn
        self.steps, self.batch_size, self.seed, self.num_workers = steps, batch_size, seed, num_workers
        self.validate, self.val_every, self.log_every = validate, val_every, log_every
        self.grad_clip, self.progress, self.plot = grad_clip, progress, plot
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.checkpoint_every = checkpoint_every
        self.optimizer = (optimizer if isinstance(optimizer, torch.optim.Optimizer)
                          else make_optimizer(optimizer, self.model.parameters(), lr, weight_decay))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, steps, schedule, milestones, gamma, warmup_steps))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.step, self.history = 0, []
        seed_everything(seed)

    def _amp_dtype(self, enabled: bool):
        if not enabled or self.device.type != "cuda":
            return None  # autocast on CPU would slow training down and change its numbers
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    @property
    def steps_per_epoch(self) -> int:
        return len(self.dataset) // self.batch_size

    # -- data --
    def _batches(self):
        """Batches from the current data position on, epoch after epoch (the position is derived from step)."""
        epoch, batch = divmod(self.step, self.steps_per_epoch)
        items = _SeededItems(self.dataset, self.seed)
        while True:
            if hasattr(self.dataset, "set_epoch"):  # datasets that vary their augmentation by epoch (TopDownDataset)
                self.dataset.set_epoch(epoch)
            order = epoch_order(len(self.dataset), self.seed, epoch)[batch * self.batch_size:]
            loader = DataLoader(items, batch_size=self.batch_size, sampler=[(epoch, i) for i in order],
                                drop_last=True, num_workers=self.num_workers,
                                pin_memory=self.device.type == "cuda")
            yield from loader
            epoch, batch = epoch + 1, 0

    def _to_device(self, value):
        if isinstance(value, (list, tuple)):
            return [self._to_device(v) for v in value]
        value = value.to(self.device, non_blocking=True)
        if self.channels_last and value.dim() == 4:
            value = value.contiguous(memory_format=torch.channels_last)
        return value

    # -- one step --
    def train_step(self, batch: dict) -> float:
        """One optimisation step on a batch dict; returns the loss."""
        image, target = self._to_device(batch["image"]), self._to_device(batch["target"])
        weight = self._to_device(batch["target_weight"]) if "target_weight" in batch else None
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            loss = self.loss_fn(self.model(image), target, weight)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss.item()} at step {self.step}; lower the LR "
                                     f"(now {self.optimizer.param_groups[0]['lr']:.3g}) or check the targets")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return loss.item()

    def run_validation(self) -> dict:
        """Call ``validate(model)`` in eval mode and record its metrics in the history at the current step."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                metrics = {k: float(v) for k, v in self.validate(self.model).items()}
        finally:
            self.model.train(was_training)
        if not self.history or self.history[-1]["step"] != self.step:
            self.history.append({"step": self.step})
        self.history[-1].update(metrics)
        return metrics

    # -- the loop --
    def fit(self, until: int | None = None) -> list[dict]:
        """Train from the current step to ``steps`` (or stop early at step ``until``); returns the history."""
        end = self.steps if until is None else min(until, self.steps)
        from tqdm.auto import tqdm

        live = _LivePlot() if self.plot and _in_notebook() else None
        bar = tqdm(total=self.steps, initial=self.step, disable=not self.progress, desc="train", unit="step")
        self.model.train()
        window, start = [], time.perf_counter()
        batches = self._batches()
        try:
            while self.step < end:
                window.append(self.train_step(next(batches)))
                bar.update(1)
                if self.step % self.log_every == 0 or self.step == end:
                    record = self._log(window, time.perf_counter() - start)
                    bar.set_postfix(loss=f"{record['loss']:.3g}", samples_s=f"{record['samples_per_s']:.0f}")
                    window, start = [], time.perf_counter()
                if self.validate is not None and (self.step == self.steps or
                                                  (self.val_every and self.step % self.val_every == 0)):
                    self.run_validation()
                if live is not None and (self.step % self.log_every == 0 or self.step == end):
                    live.update(self.history)
                if self.checkpoint is not None and (self.step == end or (
                        self.checkpoint_every and self.step % self.checkpoint_every == 0)):
                    self.save(self.checkpoint)
        finally:
            bar.close()
            batches.close()
            if live is not None:
                live.close()
        return self.history

    def _log(self, losses: list[float], seconds: float) -> dict:
        record = {"step": self.step, "loss": float(np.mean(losses)),
                  "lr": self.optimizer.param_groups[0]["lr"],
                  "samples_per_s": len(losses) * self.batch_size / max(seconds, 1e-9)}
        self.history.append(record)
        return record

    # -- checkpoints --
    def state_dict(self) -> dict:
        return {"format": FORMAT, "step": self.step, "steps": self.steps, "history": self.history,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "rng": _rng_state()}

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the whole training state atomically (temp file, then os.replace)."""
        path = path if path is not None else self.checkpoint
        if path is None:
            raise ValueError("Trainer.save needs a path (or Trainer(checkpoint=...))")
        return atomic_save(self.state_dict(), path)

    def load(self, path: str | os.PathLike) -> "Trainer":
        """Restore a checkpoint written by :meth:`save`, so that ``fit()`` continues exactly where it stopped."""
        ckpt = read_checkpoint(path)
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise ValueError(f"checkpoint {path} does not fit this model/optimizer: {err}") from None
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.step, self.history = ckpt["step"], list(ckpt["history"])
        _set_rng_state(ckpt["rng"])
        return self


# ---- notebooks: load a cached run or train it -------------------------------------------------------------------

def checkpoint_path(chapter: str, config: dict, profile: str | None = None) -> Path:
    """Where the run of (chapter, profile, config) is cached: ``cache_dir("checkpoints")/chapter-profile-hash.pt``.

    Trial runs (``$POSEBOOK_TRIAL``) are kept in ``cache_dir("checkpoints", "trial")``: a few steps saved under a
    real run's name would later be loaded as if they were that run.
    """
    profile = profile or posebook.profile()
    digest = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]
    folder = posebook.cache_dir("checkpoints", "trial") if posebook.is_trial() else posebook.cache_dir("checkpoints")
    return Path(folder) / f"{chapter}-{profile}-{digest}.pt"


def load_or_train(trainer: Trainer, chapter: str, config: dict, profile: str | None = None) -> Trainer:
    """Load the cached run of (chapter, profile, config) if there is one, else train (resuming a partial run).

    Sets ``trainer.loaded`` to True when nothing had to be trained. The checkpoint is saved during training
    (every ``checkpoint_every`` steps if set) and at the end.
    """
    path = checkpoint_path(chapter, config, profile)
    trainer.checkpoint = path
    if path.exists():
        trainer.load(path)
    trainer.loaded = trainer.step >= trainer.steps
    if not trainer.loaded:
        trainer.fit()
    return trainer


# ---- figures ---------------------------------------------------------------------------------------------------

def plot_history(history: list[dict], ax=None, metrics: Sequence[str] | None = None):
    """Loss against step (log scale) and, on a second axis, the validation metrics; returns the figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    losses = [(h["step"], h["loss"]) for h in history if "loss" in h]
    if losses:
        ax.plot(*zip(*losses), color="tab:blue", label="training loss")
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    base = {"step", "loss", "lr", "samples_per_s"}
    names = metrics if metrics is not None else sorted({k for h in history for k in h} - base)
    if names:
        twin = ax.twinx()
        for name in names:
            points = [(h["step"], h[name]) for h in history if name in h]
            twin.plot(*zip(*points), marker="o", label=name)
        twin.set_ylabel("validation")
        twin.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return ax.figure


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


class _LivePlot:
    """The loss/metric figure, redrawn in place in a notebook (IPython display handle); silent elsewhere."""

    def __init__(self):
        import matplotlib.pyplot as plt
        from IPython.display import display

        self.fig, self.ax = plt.subplots(figsize=(7, 3.5))
        self.handle = display(self.fig, display_id=True)

    def update(self, history: list[dict]) -> None:
        for extra in self.fig.axes[1:]:
            extra.remove()
        self.ax.clear()
        plot_history(history, ax=self.ax)
        if self.handle is not None:
            self.handle.update(self.fig)

    def close(self) -> None:
        import matplotlib.pyplot as plt

        plt.close(self.fig)
