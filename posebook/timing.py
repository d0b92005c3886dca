"""Timing forward passes side by side: the median milliseconds of each (model, input) pair, on the wall clock and in
this process's CPU time, over interleaved rounds (pair 0, pair 1, ..., pair 0, ...) so that a change in the
machine's load slows every pair alike. ``python -m posebook.bench models`` and ``python -m posebook.bench infer``
(:mod:`posebook.inference.optimize`) time with it. Chapter 03 explains why the rounds are interleaved.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import torch


def interleaved_ms(runs: Sequence[tuple[Callable, torch.Tensor]], rounds: int, warmup: int = 1
                   ) -> tuple[list[float], list[float]]:
    """(wall, CPU): per pair of ``runs``, the median milliseconds of one no-grad call ``model(x)`` over ``rounds``
    interleaved rounds after ``warmup`` untimed ones. On a loaded machine the wall clock measures the share of the
    CPU the process gets as much as the model; with one thread the CPU time is the work itself."""
    if rounds < 1 or warmup < 0:
        raise ValueError(f"interleaved_ms: rounds must be >= 1 and warmup >= 0, got {rounds} and {warmup}")
    wall: list[list[float]] = [[] for _ in runs]
    cpu: list[list[float]] = [[] for _ in runs]
    with torch.no_grad():
        for i in range(warmup + rounds):
            for k, (model, x) in enumerate(runs):
                start, start_cpu = time.perf_counter(), time.process_time()
                model(x)
                if i >= warmup:
                    wall[k].append((time.perf_counter() - start) * 1000)
                    cpu[k].append((time.process_time() - start_cpu) * 1000)
    return [sorted(t)[len(t) // 2] for t in wall], [sorted(t)[len(t) // 2] for t in cpu]
