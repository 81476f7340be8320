"""Timing helpers for the benchmarks: interleaved repeats, medians, fixed thread count."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each function, calling them in turn so machine noise hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def set_threads(n: int) -> None:
    torch.set_num_threads(n)


def train_step(module: torch.nn.Module, make_output: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """A closure doing forward + backward (what a training step costs) and clearing the gradients."""
    def step():
        module.zero_grad(set_to_none=True)
        make_output().square().mean().backward()
    return step
