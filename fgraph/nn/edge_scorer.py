r"""Learned edge scoring (GraphFM's interaction selection metric)."""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor, nn

from ..graph.adjacency import DenseAdj
from .attentive_edge_pooling import pair_products, upper_pairs
from .message_passing import FieldMessagePassing


@lru_cache(maxsize=64)
def pair_slots(num_nodes: int, self_loops: bool, device: torch.device) -> Tensor:
    """For every edge slot ``(i, s)`` of the complete graph, in the flat ``(n, k)`` edge order, the column of its
    unordered pair in :func:`upper_pairs` (``diagonal=self_loops``)."""
    pairs = upper_pairs(num_nodes, device, diagonal=self_loops)
    number = torch.empty(num_nodes, num_nodes, dtype=torch.long, device=device)
    column = torch.arange(pairs.size(1), device=device)
    number[pairs[0], pairs[1]] = column
    number[pairs[1], pairs[0]] = column
    source = DenseAdj.complete(1, num_nodes, self_loops, device).local_index()[0]          # (n, k)
    return number.gather(1, source).reshape(-1)


class EdgeScorer(FieldMessagePassing):
    r"""Scores every edge by an MLP on the element-wise product of its endpoints (GraphFM, Eq. 7):

    .. math::
        p_{ij} = \sigma\big(\mathbf{W}_2\, \delta(\mathbf{W}_1 (\mathbf{e}_i \odot \mathbf{e}_j)
        + \mathbf{b}_1) + \mathbf{b}_2\big)

    with :math:`\delta` = ReLU and :math:`\sigma` the logistic function, so :math:`p_{ij} \in (0, 1)` reads as
    the probability that the interaction of :math:`i` and :math:`j` is useful. The score depends on
    :math:`\mathbf{e}_i \odot \mathbf{e}_j` only, so it is symmetric: :math:`p_{ij} = p_{ji}`.

    On a field graph (a :class:`~fgraph.graph.DenseAdj`) all pairs are scored as one ``(B, n, n)`` tensor;
    on any other graph the edges of ``edge_index`` are scored. On a complete field graph the symmetry is
    used: only the :math:`n(n+1)/2` unordered pairs (:math:`n(n-1)/2` without self-loops) go through the
    MLP, and every edge reads its pair's score. :math:`\mathbf{e}_i \odot \mathbf{e}_j` and
    :math:`\mathbf{e}_j \odot \mathbf{e}_i` are the same floats, so this is the same function at a little
    over half the cost, and the gradient of a pair's score is the sum over its two edges.

    Args:
        in_channels: node feature size ``d``.
        hidden_channels: width of the hidden layer (16 in the authors' code).
        symmetric: score each unordered pair once on a complete field graph (default True); False scores
            every ordered edge, for comparisons.

    Shapes:
        - **input:** node features ``(N, d)``, ``edge_index`` ``(2, E)`` or a ``DenseAdj``
        - **output:** edge scores ``(E,)`` in the order of ``edge_index`` (for a ``DenseAdj``, its flat edge
          order: ``adj.edges(scores)`` is the ``(B, n, k)`` view)
    """

    def __init__(self, in_channels: int, hidden_channels: int = 16, symmetric: bool = True):
        super().__init__(aggr="sum")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.symmetric = bool(symmetric)
        self.lin1 = nn.Linear(in_channels, hidden_channels)
        self.lin2 = nn.Linear(hidden_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor | DenseAdj) -> Tensor:
        if self.symmetric and isinstance(edge_index, DenseAdj) and edge_index.is_complete and not self.explain:
            return self._pair_scores(x, edge_index)
        return self.edge_updater(edge_index, x=x)

    def _pair_scores(self, x: Tensor, adj: DenseAdj) -> Tensor:
        n = adj.num_nodes
        dense = adj.target(x).squeeze(2)                                   # (B, n, d), the shape checked
        pairs = upper_pairs(n, adj.device, diagonal=adj.self_loops)
        scores = self.score(pair_products(dense, pairs))                  # (B, P)
        return scores.index_select(1, pair_slots(n, adj.self_loops, adj.device)).reshape(-1)

    def edge_update(self, x_i: Tensor, x_j: Tensor) -> Tensor:
        return self.score(x_i * x_j)

    def score(self, inter: Tensor) -> Tensor:
        """Eq. 7's MLP on element-wise products ``(..., d)``, giving ``(...)`` scores in (0, 1)."""
        return torch.sigmoid(self.lin2(torch.relu(self.lin1(inter)))).squeeze(-1)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, hidden={self.hidden_channels}"
                + ("" if self.symmetric else ", symmetric=False") + ")")
