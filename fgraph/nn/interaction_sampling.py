r"""IFM's interaction sampling: keep ``c`` pairs, drawn by their importance."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .topk_edges import topk_per_target


class InteractionSampling(nn.Module):
    r"""Keeps exactly ``c`` of the candidate pairs, chosen by non-negative importances :math:`w` (IFM, "Sampling").

    Training draws ``c`` pairs without replacement with probabilities proportional to :math:`w` (Gumbel-top-k:
    the ``c`` largest :math:`\log w + g`, :math:`g \sim \mathrm{Gumbel}(0, 1)`); evaluation keeps the ``c``
    largest :math:`w`, so predictions are deterministic. IFM passes :math:`w_{ij} = \lVert \mathbf{f}_{ij} \rVert^2`
    (the authors' code samples by the squared norm of the field aspect). The choice is not differentiable;
    the kept pairs' importances still learn through the model's output.

    Args:
        num_samples: ``c`` as a count (``int >= 1``), or as a fraction of the candidates (``float`` in
            ``(0, 1]``, rounded up; with ``index``, of the largest group). A count larger than the number of
            candidates keeps them all.

    Shapes:
        - **input:** importances ``(..., P)`` (one choice per leading index, e.g. ``(P,)`` for one choice per
          batch); or flat ``(E,)`` with ``index`` ``(E,)`` naming the group of each entry (a choice per group)
        - **output:** the kept positions, ascending: ``(..., c)`` along the last axis; or, with ``index``, the
          positions ``(E',)`` of the kept entries (``c`` per group, all of a group with fewer)
    """

    def __init__(self, num_samples: int | float):
        super().__init__()
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, float)):
            raise TypeError(f"num_samples must be an int count or a float fraction, got {num_samples!r}")
        if isinstance(num_samples, float) and not 0.0 < num_samples <= 1.0:
            raise ValueError(f"a fraction of pairs must be in (0, 1], got {num_samples}")
        if isinstance(num_samples, int) and num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.num_samples = num_samples

    def count(self, num_candidates: int) -> int:
        """``c`` for ``num_candidates`` candidates."""
        if isinstance(self.num_samples, float):
            return max(1, math.ceil(self.num_samples * num_candidates - 1e-9))
        return min(self.num_samples, num_candidates)

    def keys(self, weights: Tensor) -> Tensor:
        """What is ranked: :math:`\\log w` plus Gumbel noise in training, :math:`w` in evaluation."""
        if bool((weights < 0).any()) or not bool(torch.isfinite(weights).all()):
            raise ValueError("sampling importances must be finite and non-negative")
        weights = weights.detach()
        if not self.training:
            return weights
        uniform = torch.rand_like(weights).clamp_(1e-10, 1.0 - 1e-7)
        return weights.clamp_min(1e-30).log() - torch.log(-torch.log(uniform))

    def forward(self, weights: Tensor, index: Tensor | None = None) -> Tensor:
        keys = self.keys(weights)
        if index is None:
            if weights.dim() == 0 or weights.size(-1) == 0:
                raise ValueError(f"no candidates to sample from (importances of shape {tuple(weights.shape)})")
            c = self.count(weights.size(-1))
            return torch.topk(keys, c, dim=-1).indices.sort(dim=-1).values
        if weights.dim() != 1 or index.shape != weights.shape:
            raise ValueError(f"with index, importances and index must both be (E,), got {tuple(weights.shape)} "
                             f"and {tuple(index.shape)}")
        sizes = torch.bincount(index)
        c = self.count(int(sizes.max()) if sizes.numel() else 0)
        # topk_per_target groups entries by the target row of an edge_index; here the groups are given.
        keep = topk_per_target(keys, torch.stack([index, index]), c, num_nodes=sizes.numel())
        return keep.nonzero().squeeze(1)

    def extra_repr(self) -> str:
        return f"num_samples={self.num_samples}"
