"""``python -m posebook.train``: a chapter's reference network trained with its profile's recipe from the command
line, in one process or under ``torchrun`` with DistributedDataParallel (:func:`main`). Chapter 01.

It lives beside :mod:`posebook.train` rather than in it because it assembles the run from :mod:`posebook.learn`,
which itself trains with :class:`posebook.train.Trainer`: the imports stay one-way.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from torch import nn

import posebook
from posebook import argtypes, learn
from posebook.checkpoints import read_checkpoint, write_checkpoint
from posebook.train import world


def state_digest(model: nn.Module) -> str:
    """SHA-256 of ``model``'s state_dict: every name, dtype, shape and byte of its parameters and buffers (equal
    digests: equal weights)."""
    import hashlib

    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        value = value.detach().cpu().contiguous()
        digest.update(f"{name} {value.dtype} {tuple(value.shape)}\0".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _start_processes(device: torch.device) -> bool:
    """Join the process group ``torchrun`` describes in the environment (RANK, WORLD_SIZE, MASTER_ADDR, ...):
    NCCL on CUDA (each process on its LOCAL_RANK's GPU), gloo on the CPU. False when not started by torchrun."""
    import torch.distributed as dist

    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ or dist.is_initialized():
        return False
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return True


def _coco(settings: dict, folder: str, parser):
    """The full profile's COCO subsets (train2017, val2017) at the settings' sizes and targets, or a parser error
    naming the folder and the command that writes them."""
    from posebook.data import downloaded_coco_splits
    from posebook.data.transforms import Augment
    from posebook.studies import topdown

    coco = downloaded_coco_splits(folder, settings["val_people"], input_size=tuple(settings["input_size"]),
                                  heatmap_size=tuple(settings["heatmap_size"]), sigma=settings["sigma"],
                                  codec=topdown.codecs(topdown.data_settings(settings)),
                                  augment=Augment(**settings["augment"]))
    if coco is None:
        parser.error(f"the full profile trains on COCO, and the train2017 and val2017 subsets are not both in "
                     f"{folder} (annotations/person_keypoints_SPLIT_subset.json and SPLIT/*.jpg): write them with "
                     f"data_scripts/download_coco.py --out {folder} --split train2017 (then --split val2017), or "
                     f"point --coco (or POSEBOOK_COCO_DIR) at them")
    return coco


def main(argv: list[str] | None = None) -> dict:
    """``python -m posebook.train --chapter NN --profile P [--steps N] [--seed S] --out DIR [--resume]``: train a
    chapter's reference network with its profile's recipe (chapter 01's recipe, :mod:`posebook.recipe`; the
    network, data and budget of the chapter's live run, :func:`posebook.learn.live_settings`), in one process or
    under ``torchrun --nproc_per_node K`` with DistributedDataParallel (NCCL on GPUs, gloo on the CPU).

    The smoke, cpu and gpu profiles train on the synthetic people, ``full`` on the COCO subsets in ``--coco``
    (default ``$POSEBOOK_COCO_DIR`` or ``data/coco``). Rank 0 writes ``DIR/checkpoint.pt`` every quarter of the run
    and at its end (``--until K`` stops at step K; ``--resume`` continues from the checkpoint exactly); every rank
    writes its final weights to ``DIR/rank{r}.pt``. Rank 0 prints one JSON line last and it is returned: chapter,
    profile, steps (reached), world_size, ranks_equal (every rank's weights have rank 0's :func:`state_digest`),
    seconds (of training), loss (the last logged, over all ranks) and AP (the last validation's, else None).
    """
    import argparse
    import json
    import sys

    import torch.distributed as dist

    def chapter(value: str) -> str:
        try:
            return learn.reference(value).chapter
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parser = argparse.ArgumentParser(
        prog="python -m posebook.train",
        description="train a chapter's reference network with its profile's recipe, in one process or under "
                    "torchrun --nproc_per_node K (DistributedDataParallel: NCCL on GPUs, gloo on the CPU)")
    parser.add_argument("--chapter", required=True, type=chapter, help=f"one of {sorted(learn.REFERENCES)}")
    parser.add_argument("--profile", required=True, choices=sorted(learn.LIVE_BUDGETS))
    parser.add_argument("--steps", type=argtypes.positive_int, help="the run's length (default: the profile's live-run budget; "
                                                       "with --resume, the checkpoint's)")
    parser.add_argument("--until", type=argtypes.positive_int, help="stop at this step (the checkpoint is written there); "
                                                       "continue later with --resume")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and data order (default 0)")
    parser.add_argument("--out", required=True, help="folder for checkpoint.pt and rank{r}.pt")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out/checkpoint.pt")
    parser.add_argument("--coco", default=os.environ.get("POSEBOOK_COCO_DIR", "data/coco"),
                        help="the full profile's COCO subsets (data_scripts/download_coco.py --out DIR)")
    args = parser.parse_args(argv)

    out = Path(args.out)
    checkpoint = out / "checkpoint.pt"
    settings = learn.live_settings(args.chapter, args.profile)
    if args.resume:
        if not checkpoint.is_file():
            parser.error(f"--resume: {checkpoint} does not exist")
        saved = read_checkpoint(checkpoint)["steps"]
        if args.steps is not None and args.steps != saved:
            parser.error(f"--resume: {checkpoint} is a run of {saved} steps, not --steps {args.steps} (its "
                         f"learning-rate schedule is fixed by its length)")
        settings["steps"] = saved
    elif checkpoint.exists():
        parser.error(f"{checkpoint} exists: give --resume to continue that run, or another --out")
    elif args.steps is not None:
        settings["steps"] = args.steps
    if args.until is not None and args.until > settings["steps"]:
        parser.error(f"--until {args.until} is past the run's {settings['steps']} steps")
    coco = _coco(settings, args.coco, parser) if args.profile == "full" else None

    started = _start_processes(posebook.device())
    try:
        rank, world_size = world()
        if coco is not None:
            train_set, val_set, views = coco[0], coco[1], None
        else:
            if rank != 0:  # rank 0 renders the cached crops first; the others then read them
                dist.barrier()
            train_set = learn.live_train_set(settings)
            if started and rank == 0:
                dist.barrier()
            val_set, views = learn.live_validation(settings) if rank == 0 else (None, None)
        out.mkdir(parents=True, exist_ok=True)
        trainer = learn.live_trainer(settings, train_set, val_set if rank == 0 else None, views, seed=args.seed,
                                     progress=rank == 0 and sys.stderr.isatty(), checkpoint=checkpoint)
        if args.resume:
            trainer.load(checkpoint)
        start = time.perf_counter()
        trainer.fit(until=args.until)
        seconds = time.perf_counter() - start
        write_checkpoint(trainer.model.state_dict(), out / f"rank{rank}.pt")
        digests = [state_digest(trainer.model)]
        if started:
            digests = [None] * world_size
            dist.all_gather_object(digests, state_digest(trainer.model))
    finally:
        if started:
            dist.destroy_process_group()
    losses = [h["loss"] for h in trainer.history if "loss" in h]
    scores = [h["AP"] for h in trainer.history if "AP" in h]
    result = dict(chapter=settings["chapter"], profile=settings["profile"], steps=trainer.step,
                  world_size=world_size, ranks_equal=len(set(digests)) == 1, seconds=round(seconds, 3),
                  loss=losses[-1] if losses else None, AP=scores[-1] if scores else None)
    if rank == 0:
        print(json.dumps(result), flush=True)
    return result
