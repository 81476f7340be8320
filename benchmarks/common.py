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


def parse_args(description: str | None = None, repeats: int = 5, extra: Callable | None = None):
    """The options every benchmark takes (B, d, the field counts, repeats, threads); sets threads and seed.

    ``extra(parser)`` adds a benchmark's own options.
    """
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--fields", type=int, nargs="+", default=[10, 39])
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--threads", type=int, default=2)
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    torch.manual_seed(0)
    return args


def compare(cases: dict, batch: int, repeats: int, n: int, width: int = 30) -> None:
    """Time ``{name: (reference_fn, fgraph_fn, module)}`` as training steps and print samples/s and the ratio."""
    for name, (ref_fn, fgraph_fn, module) in cases.items():
        t = time_interleaved({"ref": train_step(module, ref_fn), "fgraph": train_step(module, fgraph_fn)},
                             repeats=repeats)
        print(f"{n:>3} {name:<{width}} {batch / t['ref']:>20,.0f} {batch / t['fgraph']:>17,.0f} "
              f"{t['ref'] / t['fgraph']:>10.2f}x", flush=True)


def header(what: str = "reference", width: int = 30) -> None:
    print(f"{'n':>3} {'what':<{width}} {what + ' samples/s':>20} {'fgraph samples/s':>17} {'fgraph/ref':>11}")
