r"""Per-node top-k edge sampling (GraphFM's graph sampling)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..graph.adjacency import DenseAdj

MODES = ("hard", "soft")


def topk_per_target(scores: Tensor, edge_index: Tensor, k: int, num_nodes: int | None = None) -> Tensor:
    """Boolean mask of the ``k`` highest-scoring incoming edges of every target node (exactly ``k``, or all
    of a node's edges when it has fewer; ties broken by edge order)."""
    dst = edge_index[1]
    num_nodes = int(dst.max()) + 1 if num_nodes is None and dst.numel() else (num_nodes or 0)
    by_score = torch.argsort(scores.detach(), descending=True, stable=True)
    order = by_score[torch.argsort(dst[by_score], stable=True)]   # grouped by target, best first
    counts = torch.bincount(dst, minlength=num_nodes)
    start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(dst.numel(), device=dst.device) - start[dst[order]]
    keep = torch.zeros_like(dst, dtype=torch.bool)
    keep[order[rank < k]] = True
    return keep


class TopKEdges(nn.Module):
    r"""Keeps, for every target node, the ``k`` incoming edges with the highest scores (GraphFM, Eq. 8–9):

    .. math::
        \mathcal{N}_i = \operatorname{argtop}_k \{ p_{ij} : j \to i \}

    Two modes:

    * ``"hard"`` (default, the paper): dropped edges leave the graph. The result is a smaller graph whose
      kept edges carry their scores; on a field graph it is a ``(B, n, k)`` :class:`~fgraph.graph.DenseAdj`.
    * ``"soft"`` (the authors' code): the graph is unchanged and dropped edges get weight 0. A layer that
      multiplies attention logits by the weights then still gives dropped neighbours some attention (logit 0).

    Gradients reach the kept scores. Ties are broken deterministically, so exactly ``k`` edges are kept per
    node (all of them when a node has ``k`` or fewer); ``k = None`` keeps everything.

    Args:
        k: edges kept per node; ``forward`` may override it.
        mode: ``"hard"`` or ``"soft"``.

    Shapes:
        - **input:** scores ``(E,)``, ``edge_index`` ``(2, E)`` or a ``DenseAdj``
        - **output:** ``(edge_index, weight)``: the kept graph (a ``(2, E')`` tensor or a ``DenseAdj``) and
          its edge weights ``(E',)`` in that graph's edge order
    """

    def __init__(self, k: int | None = None, mode: str = "hard"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if k is not None and k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k, self.mode = k, mode

    def forward(self, scores: Tensor, edge_index: Tensor | DenseAdj, k: int | None = None,
                num_nodes: int | None = None) -> tuple[Tensor | DenseAdj, Tensor]:
        k = self.k if k is None else k
        if isinstance(edge_index, DenseAdj):
            return self._dense(scores, edge_index, k)
        if k is None:
            return edge_index, scores
        keep = topk_per_target(scores, edge_index, k, num_nodes)
        if self.mode == "soft":
            return edge_index, scores * keep
        return edge_index[:, keep], scores[keep]

    def _dense(self, scores: Tensor, adj: DenseAdj, k: int | None) -> tuple[DenseAdj, Tensor]:
        if k is None or k >= adj.k:
            return adj, scores
        dense = adj.edges(scores)                                   # (B, n, k0)
        kept, slot = torch.topk(dense, k, dim=-1)
        if self.mode == "soft":
            mask = torch.zeros_like(dense).scatter_(-1, slot, 1.0)
            return adj, adj.flatten_edges(dense * mask)
        B, n, k0 = adj.shape
        index = adj.local_index().expand(B, n, k0).gather(-1, slot)
        return DenseAdj(B, n, index, distinct=adj.distinct), kept.reshape(-1)

    def extra_repr(self) -> str:
        return f"k={self.k}, mode={self.mode!r}"
