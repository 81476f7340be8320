r"""Learned edge scoring (GraphFM's interaction selection metric)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..graph.adjacency import DenseAdj
from .message_passing import FieldMessagePassing


class EdgeScorer(FieldMessagePassing):
    r"""Scores every edge by an MLP on the element-wise product of its endpoints (GraphFM, Eq. 7):

    .. math::
        p_{ij} = \sigma\big(\mathbf{W}_2\, \delta(\mathbf{W}_1 (\mathbf{e}_i \odot \mathbf{e}_j)
        + \mathbf{b}_1) + \mathbf{b}_2\big)

    with :math:`\delta` = ReLU and :math:`\sigma` the logistic function, so :math:`p_{ij} \in (0, 1)` reads as
    the probability that the interaction of :math:`i` and :math:`j` is useful. The score depends on
    :math:`\mathbf{e}_i \odot \mathbf{e}_j` only, so it is symmetric: :math:`p_{ij} = p_{ji}`.

    On a field graph (a :class:`~fgraph.graph.DenseAdj`) all pairs are scored as one ``(B, n, n)`` tensor;
    on any other graph the edges of ``edge_index`` are scored.

    Args:
        in_channels: node feature size ``d``.
        hidden_channels: width of the hidden layer (16 in the authors' code).

    Shapes:
        - **input:** node features ``(N, d)``, ``edge_index`` ``(2, E)`` or a ``DenseAdj``
        - **output:** edge scores ``(E,)`` in the order of ``edge_index`` (for a ``DenseAdj``, its flat edge
          order: ``adj.edges(scores)`` is the ``(B, n, k)`` view)
    """

    def __init__(self, in_channels: int, hidden_channels: int = 16):
        super().__init__(aggr="sum")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.lin1 = nn.Linear(in_channels, hidden_channels)
        self.lin2 = nn.Linear(hidden_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor | DenseAdj) -> Tensor:
        return self.edge_updater(edge_index, x=x)

    def edge_update(self, x_i: Tensor, x_j: Tensor) -> Tensor:
        hidden = torch.relu(self.lin1(x_i * x_j))
        return torch.sigmoid(self.lin2(hidden)).squeeze(-1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, hidden={self.hidden_channels})"
