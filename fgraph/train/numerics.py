r"""Flushing subnormal floats to zero while a model trains or scores on the CPU.

A float32 below :math:`2^{-126} \approx 1.2 \times 10^{-38}` in magnitude (a *subnormal*) makes x86 arithmetic
many times slower. Training makes them where a weight has no gradient from the data but does have a weight
decay, under an optimiser whose step scales with the gradient's history: Adagrad's step on such a weight is
``lr * wd * w / sqrt(sum of (wd * w)^2)``, a constant fraction of ``w``, so ``w`` decays geometrically and
reaches the subnormals within a few hundred steps. AFM and IFM under the regression protocol (Adagrad with
``attention_l2`` on the attention network) hit this: the ReLU units that no pair activates keep decaying.

Measured (``python -m benchmarks.denormals``: IFM at embedding 256, attention 8, ``attention_l2=0.0156``, batch
128, Adagrad lr 0.1, one thread): after 240 steps 1,021 of the 2,048 attention weights were subnormal, and a
training step took 2.7 times as long as with flushing on (a forward pass 4.4 times; the table is in
``benchmarks/README.md``).

:func:`flush_denormals` sets ``torch.set_flush_denormal(True)`` for a block and restores the state it found.
The CPU flag is per thread: it covers the calling thread and the threads it starts afterwards, not the
intra-op threads torch had already started (``threads > 1``); there a part of the arithmetic keeps them.
"""
from __future__ import annotations

import contextlib

import torch

__all__ = ["flush_denormals", "flushing_denormals"]


def flushing_denormals() -> bool:
    """Whether the calling thread flushes subnormal floats to zero (torch has a setter, no getter)."""
    return float(torch.full((1,), 1e-40) * 1.0) == 0.0


@contextlib.contextmanager
def flush_denormals(enabled: bool = True):
    """Flush subnormal floats to zero inside the block (when ``enabled`` and the CPU supports it), then restore
    the state found on entry."""
    if not enabled:
        yield
        return
    before = flushing_denormals()
    if before or not torch.set_flush_denormal(True):   # already on, or a CPU without the flag
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(before)
