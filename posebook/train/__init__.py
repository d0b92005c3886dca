"""One Trainer for every chapter: device, mixed precision, seeded epochs, progress bar, history, exact resume.

Usage::

    trainer = Trainer(model, train_set, loss_fn, steps=2000, batch_size=32, optimizer="adam", lr=1e-3,
                      schedule="multistep", milestones=(1500, 1800), warmup_steps=100,
                      validate=lambda m: evaluate(m, val_set), val_every=500)
    history = trainer.fit()               # list of dicts: step, loss, lr, samples_per_s, + validation metrics
    trainer.save(path); trainer.load(path)   # exact resume: weights, optimizer, scheduler, scaler, data position

Cached runs for the notebooks (``load_or_train``) and the checkpoint files live in :mod:`posebook.checkpoints`, the
curves (``plot_history``) in :mod:`posebook.viz`.

The batch is the dataset's item dict (``image``, ``target``, ``target_weight``, ``meta``); ``image``, ``target`` and
``target_weight`` go to the device as they are, nested dicts/lists/tuples of tensors included (one target per model
output), and the loss is called as ``loss_fn(model(image), target, target_weight)``.

Randomness has one owner, the dataset: item ``i`` of epoch ``e`` draws its augmentation from a generator keyed on
(seed, e, i) (``TopDownDataset``, ``SyntheticTopDown``). The Trainer gives a training set whose ``seed`` is None its
own seed, calls ``set_epoch(e)`` and shuffles each epoch by :func:`epoch_order`, a pure function of (seed, e); it
never seeds, reads or saves the process-wide Python/numpy/torch generators. So a resumed run sees exactly the batches
the uninterrupted one would, with any number of workers. (A model that draws at random in ``forward``, dropout for
instance, draws from torch's global generator, which is not part of a checkpoint.) On CUDA the Trainer uses mixed
precision (bf16 where supported, else fp16 with a GradScaler); ``channels_last`` where it measures faster
(:data:`CHANNELS_LAST`). Explained in chapter 03 (Stacked Hourglass).

Several processes (``torchrun``): when a ``torch.distributed`` process group of more than one process is initialised
before the Trainer is made, it trains the model wrapped in ``DistributedDataParallel``; ``batch_size`` is the global
batch and each process (rank) takes its share of every global batch (:func:`rank_share`), so the ranks' batches of a
step together are the batch one process would take, and the data position of a checkpoint means the same on every
rank. Only rank 0 validates, shows the bar and writes checkpoints. ``python -m posebook.train``
(:func:`posebook.train.cli.main`) trains a chapter's reference network from the command line, in one process or under
``torchrun``.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

import posebook
from posebook.checkpoints import FORMAT, read_checkpoint, write_checkpoint

OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = ("constant", "multistep", "cosine", "flat_cosine")
# channels_last by device type: on where it measures faster for a training step (python -m posebook.bench train
# --chapter 03 --batch 8 32 --channels-last both; likewise chapter 07 at batch 16 32). On a 2-core CPU, ms/step off ->
# on: chapter 03's cpu model 152 -> 105 (batch 8) and 382 -> 294 (batch 32); chapter 07's 140 -> 131 (batch 16) and
# 207 -> 204 (batch 32); faster in every one of two interleaved runs. Other device types: off.
CHANNELS_LAST = {"cuda": True, "cpu": True}


# ---- data: the epoch order --------------------------------------------------------------------------------------

ORDERS = ("items", "images")


def epoch_order(num_items: int, seed: int, epoch: int, groups=None) -> list[int]:
    """The shuffled item order of one epoch: a pure function of (seed, epoch).

    With ``groups`` (one key per item, e.g. its photo) the groups are shuffled and each group's items follow one
    another in a shuffled order: the people of one photo then come together, so a small image cache decodes each
    photo once per epoch however large the dataset (``Trainer(order="images")``).
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    if groups is None:
        return torch.randperm(num_items, generator=generator).tolist()
    if len(groups) != num_items:
        raise ValueError(f"epoch_order: {len(groups)} group keys for {num_items} items")
    members: dict = {}
    for index, key in enumerate(groups):
        members.setdefault(key, []).append(index)
    blocks = list(members.values())
    order = []
    for b in torch.randperm(len(blocks), generator=generator).tolist():
        block = blocks[b]
        order += [block[i] for i in torch.randperm(len(block), generator=generator).tolist()]
    return order


def _loader_generator(seed: int, epoch: int) -> torch.Generator:
    """The DataLoader's own generator for one epoch (it seeds the workers), so that it draws nothing from torch's
    global generator."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))


# ---- several processes: the ranks' shares ----------------------------------------------------------------------

def world() -> tuple[int, int]:
    """(rank, world size) of this process: ``torch.distributed``'s when its process group is initialised (as
    ``torchrun`` and :func:`posebook.train.cli.main` do), else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def rank_share(order: Sequence[int], rank: int, world_size: int, batch_size: int) -> list[int]:
    """Rank ``rank``'s items of an epoch ``order`` when ``world_size`` processes train with a global batch of
    ``batch_size``: items ``rank``, ``rank + W``, ``rank + 2W``, ... of the order's whole batches (the tail that fills
    no batch is dropped, as one process drops it).

    Batch ``k`` of every rank (``batch_size / W`` items each) together is batch ``k`` of one process, so the shares
    are disjoint and their union is the epoch of one process. Raises ValueError when ``batch_size`` is not a
    multiple of ``world_size``. Chapter 03."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank_share: rank {rank} of world size {world_size}; expected 0 <= rank < world size")
    if batch_size < 1 or batch_size % world_size:
        raise ValueError(f"a global batch of {batch_size} does not split evenly over {world_size} processes: "
                         f"choose a batch that is a multiple of the number of processes")
    whole = len(order) // batch_size * batch_size
    return list(order[rank:whole:world_size])


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
              warmup_steps: int = 0, warmup_factor: float = 0.001, tail: float = 0.5) -> float:
    """The multiplier of the base LR at ``step``: linear warmup, then constant, step-wise (x gamma), cosine, or
    ``flat_cosine``: constant, then a cosine to zero over the last ``tail`` of the steps (the cpu recipe: a short
    run's curve flattens when the learning rate nears zero, so the cosine waits until the end)."""
    if schedule == "multistep":
        factor = gamma ** sum(step >= m for m in milestones)
    elif schedule == "cosine":
        factor = 0.5 * (1 + math.cos(math.pi * min(step, steps) / max(steps, 1)))
    elif schedule == "flat_cosine":
        if not 0 < tail <= 1:
            raise ValueError(f"flat_cosine tail={tail!r}: expected the share of the steps that decay, in (0, 1]")
        start = steps * (1 - tail)
        done = min(max(step - start, 0.0), steps - start) / max(steps - start, 1e-9)
        factor = 0.5 * (1 + math.cos(math.pi * done))
    elif schedule == "constant":
        factor = 1.0
    else:
        raise ValueError(f"schedule={schedule!r} is unknown; expected one of {SCHEDULES}")
    if step < warmup_steps:
        factor *= warmup_factor + (1 - warmup_factor) * step / warmup_steps
    return factor


# ---- the Trainer -----------------------------------------------------------------------------------------------

class Trainer:
    """Train ``model`` on ``dataset`` (item dicts) with ``loss_fn(outputs, target, target_weight)`` for ``steps``.

    ``optimizer`` is a name in OPTIMIZERS or a torch optimizer; ``schedule`` in SCHEDULES (``cosine_tail`` for flat_cosine; ``milestones`` in steps
    for multistep); ``validate(model) -> dict`` runs every ``val_every`` steps and at the end, in eval mode; with
    ``checkpoint`` set the state is saved every ``checkpoint_every`` steps and at the end. ``amp`` defaults to on
    for CUDA, off on CPU; ``channels_last`` to what measures faster on the device (:data:`CHANNELS_LAST`). A
    ``dataset`` with ``seed = None`` gets ``seed`` (its augmentation then repeats run after run and on resume);
    ``set_epoch(epoch)`` is called on it each epoch when it has one. ``order="images"`` shuffles photos rather
    than people and keeps each photo's people together (:func:`epoch_order`; the dataset says which photo each item
    crops with ``image_keys()``), so that its image cache decodes each photo once per epoch.

    Under an initialised ``torch.distributed`` process group of W > 1 processes (:func:`world`) the model trains
    wrapped in ``DistributedDataParallel`` (on the process's current CUDA device, or on the CPU with gloo),
    ``batch_size`` is the global batch (each rank takes ``batch_size / W`` items of it, :func:`rank_share`; it
    must divide), the logged loss is the mean over the ranks, and only rank 0 validates, shows the bar and writes
    checkpoints (:meth:`save`). ``self.model`` stays the bare network: its state_dict and checkpoints are the same
    as one process's. Chapter 03.
    """

    def __init__(self, model: nn.Module, dataset, loss_fn: Callable, *, steps: int, batch_size: int = 32,
                 optimizer: str | torch.optim.Optimizer = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                 schedule: str = "constant", milestones: Sequence[int] = (), gamma: float = 0.1,
                 warmup_steps: int = 0, cosine_tail: float = 0.5,
                 validate: Callable[[nn.Module], dict] | None = None,
                 val_every: int | None = None, log_every: int = 10, seed: int = 0, num_workers: int = 0,
                 device: torch.device | str | None = None, amp: bool | None = None,
                 channels_last: bool | None = None, grad_clip: float | None = None,
                 checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
                 progress: bool = True, plot: bool = False, order: str = "items"):
        if order not in ORDERS:
            raise ValueError(f"order={order!r} is unknown; expected one of {ORDERS}")
        if order == "images" and not hasattr(dataset, "image_keys"):
            raise ValueError(f"order='images' needs a dataset with image_keys() (which photo each item crops); "
                             f"{type(dataset).__name__} has none")
        if steps < 1 or batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got steps={steps}, batch_size={batch_size}")
        if len(dataset) < batch_size:
            raise ValueError(f"the dataset has {len(dataset)} items, fewer than one batch of {batch_size}")
        self.rank, self.world_size = world()
        if self.world_size > 1 and batch_size % self.world_size:
            raise ValueError(f"batch_size={batch_size} is the global batch of {self.world_size} processes and must "
                             f"be a multiple of {self.world_size} (each process takes an equal share of it)")
        self.device = torch.device(device) if device is not None else posebook.device()
        cuda = self.device.type == "cuda"
        if cuda and self.world_size > 1 and self.device.index is None:  # DDP needs the index: the process's device
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.amp_dtype = self._amp_dtype(cuda if amp is None else amp)
        self.channels_last = (CHANNELS_LAST.get(self.device.type, False) if channels_last is None
                              else bool(channels_last))
        self.model = model.to(self.device, memory_format=torch.channels_last if self.channels_last
                              else torch.preserve_format)
        self.ddp = None  # the model wrapped in DistributedDataParallel when several processes train it
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(self.model, device_ids=[self.device.index] if cuda else None)
        if getattr(dataset, "seed", 0) is None:  # an unseeded training set draws from the Trainer's seed
            dataset.seed = seed
        self.dataset, self.loss_fn = dataset, loss_fn
        self.steps, self.batch_size, self.seed, self.num_workers = steps, batch_size, seed, num_workers
        self.order = order
        self.validate, self.val_every, self.log_every = validate, val_every, log_every
        self.grad_clip, self.progress, self.plot = grad_clip, progress, plot
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.checkpoint_every = checkpoint_every
        self.optimizer = (optimizer if isinstance(optimizer, torch.optim.Optimizer)
                          else make_optimizer(optimizer, self.model.parameters(), lr, weight_decay))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, steps, schedule, milestones, gamma, warmup_steps, tail=cosine_tail))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.step, self.history = 0, []

    def _amp_dtype(self, enabled: bool):
        if not enabled or self.device.type != "cuda":
            return None  # autocast on CPU would slow training down and change its numbers
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    @property
    def _net(self) -> nn.Module:
        """What a training step calls: the model, or its DistributedDataParallel wrapper under several processes."""
        return self.model if self.ddp is None else self.ddp

    @property
    def steps_per_epoch(self) -> int:
        return len(self.dataset) // self.batch_size

    # -- data --
    def _batches(self):
        """Batches from the current data position on, epoch after epoch (the position is derived from step)."""
        epoch, batch = divmod(self.step, self.steps_per_epoch)
        while True:
            if hasattr(self.dataset, "set_epoch"):  # datasets that vary their augmentation by epoch (TopDownDataset)
                self.dataset.set_epoch(epoch)
            groups = self.dataset.image_keys() if self.order == "images" else None
            order = epoch_order(len(self.dataset), self.seed, epoch, groups)[batch * self.batch_size:]
            batch_size = self.batch_size
            if self.world_size > 1:  # this rank's share of each global batch
                order = rank_share(order, self.rank, self.world_size, self.batch_size)
                batch_size = self.batch_size // self.world_size
            loader = DataLoader(self.dataset, batch_size=batch_size, sampler=order, drop_last=True,
                                num_workers=self.num_workers, pin_memory=self.device.type == "cuda",
                                generator=_loader_generator(self.seed, epoch))
            yield from loader
            epoch, batch = epoch + 1, 0

    def _to_device(self, value, where: str):
        """``value`` on the device: a tensor, or nested dicts/lists/tuples of tensors (the same structure back)."""
        if isinstance(value, torch.Tensor):
            value = value.to(self.device, non_blocking=True)
            if self.channels_last and value.dim() == 4:
                value = value.contiguous(memory_format=torch.channels_last)
            return value
        if isinstance(value, dict):
            return {k: self._to_device(v, f"{where}[{k!r}]") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            moved = [self._to_device(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return type(value)(*moved) if hasattr(value, "_fields") else type(value)(moved)
        raise TypeError(f"{where} is a {type(value).__name__}; the Trainer moves tensors and nested "
                        "dicts/lists/tuples of tensors to the device")

    # -- one step --
    def train_step(self, batch: dict) -> float:
        """One optimisation step on a batch dict; returns the loss."""
        missing = [k for k in ("image", "target") if k not in batch]
        if missing:
            raise KeyError(f"a training batch needs 'image' and 'target'; the dataset's items lack {missing} "
                           f"(they have {sorted(batch)})")
        image, target = self._to_device(batch["image"], "batch['image']"), self._to_device(batch["target"],
                                                                                           "batch['target']")
        weight = (self._to_device(batch["target_weight"], "batch['target_weight']") if "target_weight" in batch
                  else None)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            loss = self.loss_fn(self._net(image), target, weight)
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

        live = None
        if self.plot:
            from posebook.viz import LivePlot, in_notebook

            live = LivePlot() if in_notebook() and self.rank == 0 else None
        bar = tqdm(total=self.steps, initial=self.step, disable=not self.progress or self.rank != 0, desc="train",
                   unit="step")
        self._net.train()
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
                if self.validate is not None and self.rank == 0 and (
                        self.step == self.steps or (self.val_every and self.step % self.val_every == 0)):
                    self.run_validation()
                if live is not None and (self.step % self.log_every == 0 or self.step == end):
                    live.update(self.history)
                if self.checkpoint is not None and (self.step == end or (
                        self.checkpoint_every and self.step % self.checkpoint_every == 0)):
                    self.save(self.checkpoint)
            if self.ddp is not None:  # the last step updated each rank's BatchNorm statistics from its own share
                self._share_buffers()
        finally:
            bar.close()
            batches.close()
            if live is not None:
                live.close()
        return self.history

    def _share_buffers(self):
        """Give every rank rank 0's buffers (BatchNorm statistics), as DDP does before each forward."""
        import torch.distributed as dist

        for buffer in self.model.buffers():
            dist.broadcast(buffer, src=0)

    def _log(self, losses: list[float], seconds: float) -> dict:
        loss = float(np.mean(losses))
        if self.world_size > 1:  # the mean over the ranks' shares: the loss of the global batch
            import torch.distributed as dist

            total = torch.tensor([loss], dtype=torch.float64, device=self.device)
            dist.all_reduce(total)
            loss = total.item() / self.world_size
        record = {"step": self.step, "loss": loss,
                  "lr": self.optimizer.param_groups[0]["lr"],
                  "samples_per_s": len(losses) * self.batch_size / max(seconds, 1e-9)}
        self.history.append(record)
        return record

    # -- checkpoints --
    def state_dict(self) -> dict:
        """What the Trainer owns: weights, optimizer, scheduler, scaler, step, history and what fixes the data
        position (seed, batch size, dataset length). No global RNG state: the Trainer draws nothing from it."""
        return {"format": FORMAT, "step": self.step, "steps": self.steps, "history": self.history,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "data": self._data_position()}

    def _data_position(self) -> dict:
        position = {"seed": self.seed, "batch_size": self.batch_size, "num_items": len(self.dataset)}
        return position if self.order == "items" else {**position, "order": self.order}

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the whole training state atomically (temp file, then os.replace). Under several processes only
        rank 0 writes (every rank returns the path)."""
        path = path if path is not None else self.checkpoint
        if path is None:
            raise ValueError("Trainer.save needs a path (or Trainer(checkpoint=...))")
        if self.rank != 0:
            return Path(path)
        return write_checkpoint(self.state_dict(), path)

    def load(self, path: str | os.PathLike) -> "Trainer":
        """Restore a checkpoint written by :meth:`save`, so that ``fit()`` continues exactly where it stopped.

        The checkpoint's seed, batch size and dataset length must be this Trainer's (else the data position would
        differ). Checkpoints of older posebook versions (with an ``"rng"`` entry and no ``"data"``) load too. Under
        several processes every rank loads the same file (on one machine, or on a file system they share); the
        position is counted in global batches, so it means the same on every rank.
        """
        ckpt = read_checkpoint(path)
        ours, saved = self._data_position(), ckpt.get("data")  # no "data": an older checkpoint, nothing to check
        differ = {} if saved is None else {
            k: (saved.get(k, "items"), ours.get(k, "items")) for k in sorted(set(saved) | set(ours))
            if saved.get(k, "items") != ours.get(k, "items")}
        if differ:
            raise ValueError(f"checkpoint {path} was trained with a different data order: "
                             + ", ".join(f"{k} {saved} there, {now} here" for k, (saved, now) in differ.items())
                             + "; resuming would not see the batches the run would have seen")
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise ValueError(f"checkpoint {path} does not fit this model/optimizer: {err}") from None
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.step, self.history = ckpt["step"], list(ckpt["history"])
        return self
