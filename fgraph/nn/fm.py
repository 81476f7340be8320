r"""The factorisation-machine pairwise term."""
from __future__ import annotations

from torch import Tensor, nn


class FMInteraction(nn.Module):
    r"""Sum of all pairwise inner products of the field embeddings, in linear time:

    .. math::
        \sum_{i<j} \langle \mathbf{e}_i, \mathbf{e}_j \rangle
        = \tfrac12 \sum_{k=1}^{d} \Big[ \big(\textstyle\sum_i e_{ik}\big)^2 - \sum_i e_{ik}^2 \Big]

    Args:
        reduce: sum over the embedding dimension (``(B,)`` output) or keep it (``(B, d)``, the
            "bi-interaction" vector of NFM-style models).

    Shapes:
        - **input:** ``(B, n, d)``
        - **output:** ``(B,)`` or ``(B, d)``
    """

    def __init__(self, reduce: bool = True):
        super().__init__()
        self.reduce = reduce

    def forward(self, e: Tensor) -> Tensor:
        out = 0.5 * (e.sum(1).pow(2) - e.pow(2).sum(1))
        return out.sum(-1) if self.reduce else out

    def extra_repr(self) -> str:
        return f"reduce={self.reduce}"
