r"""Gated propagation with edge-wise (per-field) transformations (Fi-GNN's graph layer)."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import spmm

from ..graph.adjacency import DenseAdj
from .fieldwise_linear import FieldwiseLinear
from .message_passing import FieldMessagePassing


class GatedFieldConv(FieldMessagePassing):
    r"""One step of Fi-GNN's gated graph propagation:

    .. math::
        \mathbf{m}_i &= \mathbf{W}_{\mathrm{in}}^{(t_i)} \sum_{j \in \mathcal{N}(i)} a_{ij}\,
            \mathbf{W}_{\mathrm{out}}^{(t_j)} \mathbf{h}_j + \mathbf{b}^{(t_i)} \\
        \mathbf{h}'_i &= \mathrm{GRU}(\mathbf{m}_i, \mathbf{h}_i) + \mathbf{e}^{0}_i

    where :math:`t_i` is the type (field) of node :math:`i`: the transformation of a message depends on
    which field sends it and which receives it, the "edge-wise transformation" of Fi-GNN with
    :math:`2n` matrices instead of :math:`n^2`. Without the GRU the update is
    :math:`\mathbf{h}'_i = \mathbf{m}_i + \mathbf{h}_i (+ \mathbf{e}^0_i)`. The residual
    :math:`\mathbf{e}^0_i` is passed to :meth:`forward` (Fi-GNN adds the initial embeddings).

    On a :class:`~fgraph.graph.DenseAdj` the weighted sum runs as a batched matrix product with the
    ``(B, n, n)`` adjacency, which is what a dense implementation does. In the field-graph layout (no
    ``node_type``) the two per-field maps and that product run as three batched products in field-major
    order, without copying the states back to node order in between.

    Args:
        channels: node state size ``d``.
        num_types: number of node types (fields) ``n``.
        gru: True for a GRU update of its own, an ``nn.GRUCell`` to share one across layers (Fi-GNN shares
            it across steps), False for the additive update.
        bias: the per-type bias :math:`\mathbf{b}^{(t_i)}`.

    Shapes:
        - **input:** node states ``(N, d)``, ``edge_index`` ``(2, E)`` or a :class:`~fgraph.graph.DenseAdj`,
          edge weights ``(E,)`` (optional), node types ``(N,)`` (optional: without them node ``b * n + i``
          is field ``i``, the field-graph layout), residual ``(N, d)`` (optional)
        - **output:** ``(N, d)``
    """

    def __init__(self, channels: int, num_types: int, gru: bool | nn.GRUCell = True, bias: bool = True):
        super().__init__(aggr="sum", node_dim=0)
        self.channels, self.num_types = channels, num_types
        self.lin_out = FieldwiseLinear(channels, channels, num_types, bias=False)
        self.lin_in = FieldwiseLinear(channels, channels, num_types, bias=bias)
        if isinstance(gru, nn.GRUCell):
            if gru.input_size != channels or gru.hidden_size != channels:
                raise ValueError(f"the shared GRUCell must map {channels} -> {channels}, got "
                                 f"{gru.input_size} -> {gru.hidden_size}")
            self.gru = gru
        else:
            self.gru = nn.GRUCell(channels, channels) if gru else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.lin_out.reset_parameters()
        self.lin_in.reset_parameters()
        if self.gru is not None:
            self.gru.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor | DenseAdj, edge_weight: Tensor | None = None,
                node_type: Tensor | None = None, residual: Tensor | None = None) -> Tensor:
        if x.dim() != 2 or x.size(-1) != self.channels:
            raise ValueError(f"x must have shape (N, {self.channels}), got {tuple(x.shape)}")
        if residual is not None and residual.shape != x.shape:
            raise ValueError(f"residual must have the shape of x {tuple(x.shape)}, got {tuple(residual.shape)}")
        if isinstance(edge_index, DenseAdj) and node_type is None and self._dense_path_applies():
            h = self._dense_update(x, edge_index, edge_weight)
        else:
            sent = self.lin_out(x, node_type)
            received = self.propagate(edge_index, x=sent, edge_weight=edge_weight)
            m = self.lin_in(received, node_type)
            h = self.gru(m, x) if self.gru is not None else m + x
        return h if residual is None else h + residual

    def _dense_update(self, x: Tensor, adj: DenseAdj, edge_weight: Tensor | None) -> Tensor:
        # The field-graph layout (node b * n + i is field i) on a DenseAdj. Two things differ from the general
        # route, and neither changes the function:
        # * the products stay in field-major (n, B, d) order between the two per-field maps, where the
        #   FieldwiseLinear maps around propagate copied each map's output back to node order;
        # * with the GRU, W_in^(i) is folded into the GRU's input weights, W_ih W_in^(i) (n small d x 3d
        #   matrices), so m itself is never formed and never copied back to node order: the input gates stay
        #   field-major (n, B, 3d) and the gate sums read them in place. All input-side biases are added by
        #   the one product, and the hidden side is a plain mm, where nn.GRUCell's two addmm calls first copy a
        #   broadcast bias into each (N, 3d) output. b_hr and b_hz move to the input side (the sigmoid sees
        #   their sum); b_hn stays inside the reset gate.
        B, n, _ = adj.shape
        A = adj.dense_adjacency(edge_weight).to(x.dtype)                          # (B, n, n), A[b, i, j]: j -> i
        sent = torch.bmm(x.reshape(B, n, -1).transpose(0, 1), self.lin_out.weight)  # (n, B, d)
        received = torch.bmm(A, sent.transpose(0, 1)).transpose(0, 1)              # (n, B, d) view
        bias = self.lin_in.bias                                                    # (n, d) or None
        if self.gru is None:
            m = torch.bmm(received, self.lin_in.weight).transpose(0, 1)            # (B, n, d) view
            return (m if bias is None else m + bias).reshape(B * n, -1) + x
        gru, d = self.gru, self.channels
        w_ih = gru.weight_ih.t()                                                   # (d, 3d)
        weight = torch.matmul(self.lin_in.weight, w_ih)                            # (n, d, 3d)
        bias_i = None if bias is None else bias @ w_ih                             # (n, 3d)
        b_hn = None
        if gru.bias_hh is not None:
            b_hr, b_hz, b_hn = gru.bias_hh.split(d)
            folded = gru.bias_ih + torch.cat([b_hr, b_hz, torch.zeros_like(b_hn)])
            bias_i = folded.expand(n, 3 * d) if bias_i is None else bias_i + folded
        if bias_i is None:
            gi = torch.bmm(received, weight)
        else:
            gi = torch.baddbmm(bias_i.unsqueeze(1), received, weight)              # (n, B, 3d)
        i_r, i_z, i_n = gi.transpose(0, 1).chunk(3, -1)                            # (B, n, d) views
        h_r, h_z, h_n = torch.mm(x, gru.weight_hh.t()).view(B, n, 3 * d).chunk(3, -1)
        if b_hn is not None:
            h_n = h_n + b_hn
        # The node-order operand first in each sum, so that the gates and the new state come out in node
        # order while the field-major input gates are read in place.
        reset, update = torch.sigmoid(h_r + i_r), torch.sigmoid(h_z + i_z)
        new = torch.tanh(h_n * reset + i_n)
        h = x.reshape(B, n, d)
        return (new + update * (h - new)).reshape(B * n, d)   # (1 - z) * n + z * h

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        return x_j if edge_weight is None else edge_weight.unsqueeze(-1) * x_j

    def message_and_aggregate(self, adj_t, x: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        if isinstance(adj_t, DenseAdj):
            B, n, _ = adj_t.shape
            A = adj_t.dense_adjacency(edge_weight)                         # (B, n, n), A[b, i, j]: j -> i
            return torch.bmm(A.to(x.dtype), x.view(B, n, -1)).view(B * n, -1)
        return spmm(adj_t, x, reduce="sum")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.channels}, num_types={self.num_types}, "
                f"gru={self.gru is not None})")
