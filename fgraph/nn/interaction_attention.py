r"""Multi-head attention aggregation of element-wise interactions (GraphFM's interaction aggregation)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..graph.adjacency import DenseAdj
from .message_passing import FieldMessagePassing, edge_softmax

WEIGHT_MODES = ("message", "logit")


class InteractionAttention(FieldMessagePassing):
    r"""Aggregates the element-wise interactions of a node with its neighbours (GraphFM, Eq. 10–14):

    .. math::
        c^h_{ij} &= \mathrm{LeakyReLU}\big(\mathbf{a}_h^\top (\mathbf{e}_i \odot \mathbf{e}_j)\big) \\
        \alpha^h_{ij} &= \operatorname{softmax}_{j \in \mathcal{N}(i)} c^h_{ij} \\
        \mathbf{e}'_i &= \big\Vert_{h=1}^{H}\ \sigma\Big(\sum_{j \in \mathcal{N}(i)}
            \alpha^h_{ij}\, p_{ij}\, \mathbf{W}_h (\mathbf{e}_i \odot \mathbf{e}_j)\Big)

    with heads concatenated (Eq. 13) or averaged (Eq. 14). The edge weight :math:`p_{ij}` is optional
    (without it the layer serves models that have no edge scorer); with ``edge_weight_mode="logit"`` it
    multiplies :math:`c^h_{ij}` instead of the message, as the authors' code does.

    Args:
        in_channels: node feature size ``d``.
        out_channels: output size per head ``D``.
        heads: number of heads ``H``.
        concat: concatenate the heads (output ``H * D``) or average them (output ``D``).
        negative_slope: of the LeakyReLU on the attention logits (0 gives the ReLU of the authors' code).
        interaction: aggregate :math:`\mathbf{e}_i \odot \mathbf{e}_j` (True) or the neighbour's own
            features :math:`\mathbf{e}_j` (False, GraphFM's "-I" ablation).
        edge_weight_mode: ``"message"`` (the paper) or ``"logit"`` (the code).
        activation: :math:`\sigma`, ``"relu"`` (default), ``"elu"``, ``"sigmoid"``, ``"tanh"`` or None.
        residual: add :math:`\mathrm{ReLU}(\mathbf{W}_r \mathbf{e}_i)` before the activation (the code).
        layer_norm: apply LayerNorm to the output (the code).
        dropout: dropout on the attention weights.
        project_after_aggregation: compute :math:`\mathbf{W}_h\big(\mathbf{e}_i \odot \sum_j \alpha^h_{ij}
            p_{ij} \mathbf{e}_j\big)` instead of :math:`\sum_j \alpha^h_{ij} p_{ij} \mathbf{W}_h(\mathbf{e}_i
            \odot \mathbf{e}_j)` (default True). Both are the same function, see below; False keeps the
            per-message projection (one ``W`` product per edge) for comparisons.

    Because :math:`\mathbf{W}_h` is linear without bias, :math:`\alpha^h_{ij} p_{ij}` is a scalar per edge and
    head, and :math:`\mathbf{e}_i` does not depend on :math:`j`, the sum of projected messages equals the
    projection of the weighted sum: the layer projects ``N`` aggregated rows instead of ``E`` messages. This
    is exact (up to floating-point rounding) in every configuration of this layer, since everything
    non-linear (LeakyReLU and softmax of the logits, :math:`\sigma`, the residual, LayerNorm) lies outside
    the ``W``-and-sum part, and dropout acts on the weights :math:`\alpha`, not on the messages. It would
    not hold with a bias in ``W`` (it would be scaled by :math:`\sum_j \alpha_{ij} p_{ij}`), with a
    non-linearity or dropout on each message, or with a ``max``/``min`` aggregation. On a
    :class:`~fgraph.graph.DenseAdj` the layer also computes the attention logits
    :math:`\mathbf{a}_h^\top(\mathbf{e}_i \odot \mathbf{e}_j) = (\mathbf{a}_h \odot \mathbf{e}_i)^\top
    \mathbf{e}_j` and the weighted sum as batched matrix products, never forming the ``(B, n, k, d)``
    interactions; on a top-k graph whose sources are distinct (``DenseAdj.distinct``, which
    :class:`~fgraph.nn.TopKEdges` keeps) it computes the logits of all ``n x n`` pairs and masks the pairs that
    are not edges, which is cheaper than gathering the ``k`` sources of every node.

    Shapes:
        - **input:** node features ``(N, d)``, ``edge_index`` ``(2, E)`` or a :class:`~fgraph.graph.DenseAdj`,
          edge weights ``(E,)`` (optional, in the graph's edge order)
        - **output:** ``(N, H * D)`` or ``(N, D)``; with ``return_attention_weights=True`` also
          ``(edge_index, alpha)`` with ``alpha`` of shape ``(E, H)``
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 2, concat: bool = True,
                 negative_slope: float = 0.2, interaction: bool = True, edge_weight_mode: str = "message",
                 activation: str | None = "relu", residual: bool = False, layer_norm: bool = False,
                 dropout: float = 0.0, project_after_aggregation: bool = True):
        super().__init__(aggr="sum", node_dim=0)
        # message_and_aggregate serves the DenseAdj fast path only; sparse adjacencies keep PyG's
        # message + aggregate (+ update) path.
        self.fuse = False
        self.project_after_aggregation = bool(project_after_aggregation)
        if edge_weight_mode not in WEIGHT_MODES:
            raise ValueError(f"edge_weight_mode must be one of {WEIGHT_MODES}, got {edge_weight_mode!r}")
        if activation not in (None, "relu", "elu", "sigmoid", "tanh"):
            raise ValueError(f"unknown activation {activation!r}")
        self.in_channels, self.out_channels, self.heads, self.concat = in_channels, out_channels, heads, concat
        self.negative_slope, self.interaction = negative_slope, interaction
        self.edge_weight_mode, self.activation, self.dropout = edge_weight_mode, activation, dropout
        self.att = nn.Linear(in_channels, heads, bias=False)
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        out_dim = heads * out_channels if concat else out_channels
        self.out_dim = out_dim
        self.res = nn.Linear(in_channels, out_dim) if residual else None
        self.norm = nn.LayerNorm(out_dim) if layer_norm else None
        self._alpha: Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.att.weight)
        nn.init.xavier_uniform_(self.lin.weight)
        if self.res is not None:
            self.res.reset_parameters()
        if self.norm is not None:
            self.norm.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor | DenseAdj, edge_weight: Tensor | None = None,
                return_attention_weights: bool = False):
        out = self.propagate(edge_index, x=x, edge_weight=edge_weight)     # (N, H, D)
        out = out.reshape(out.size(0), -1) if self.concat else out.mean(1)
        if self.res is not None:
            out = out + torch.relu(self.res(x))
        if self.activation is not None:
            out = getattr(torch, self.activation)(out) if self.activation != "elu" else F.elu(out)
        if self.norm is not None:
            out = self.norm(out)
        if return_attention_weights:
            alpha, self._alpha = self._alpha, None
            if isinstance(alpha, tuple):
                alpha = self._edge_alpha(alpha)
            if isinstance(edge_index, DenseAdj):
                alpha = edge_index.flatten_edges(alpha)
            return out, (edge_index, alpha)
        self._alpha = None
        return out

    def message(self, x_i: Tensor, x_j: Tensor, edge_weight: Tensor | None, index, ptr, size_i) -> Tensor:
        inter = x_i * x_j
        logits = F.leaky_relu(self.att(inter), self.negative_slope)                  # (..., H)
        weight = None if edge_weight is None else edge_weight.unsqueeze(-1)
        if weight is not None and self.edge_weight_mode == "logit":
            logits = logits * weight
        alpha = edge_softmax(logits, index, ptr, size_i)
        self._alpha = alpha
        if self.dropout and self.training:
            alpha = F.dropout(alpha, self.dropout)
        if weight is not None and self.edge_weight_mode == "message":
            alpha = alpha * weight
        if self.project_after_aggregation:
            # alpha_ij * e_j per head; e_i (for the interaction) and W come after the sum, in update()
            return alpha.unsqueeze(-1) * x_j.unsqueeze(-2)                           # (..., H, d)
        source = inter if self.interaction else x_j
        values = self.lin(source)
        values = values.view(*values.shape[:-1], self.heads, self.out_channels)      # (..., H, D)
        return alpha.unsqueeze(-1) * values

    def message_and_aggregate(self, adj_t: DenseAdj, x: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        """The dense fast path: on a :class:`DenseAdj` the logits and the weighted neighbour sum are batched
        matrix products over ``(B, n, d)`` rows, with the heads as rows of one product (returns ``(N, H, d)``,
        projected by :meth:`update`). Without ``project_after_aggregation`` it runs ``message`` + sum."""
        adj = adj_t
        B, n, k = adj.shape
        # the fast path hands edge tensors over as (B, n, k) views (and, when k = 1, node tensors too)
        x = x.reshape(B * n, x.size(-1))
        edge_weight = None if edge_weight is None else edge_weight.reshape(B, n, k)
        N = x.size(0)
        if not self.project_after_aggregation:
            msg = self.message(adj.target(x), adj.source(x), edge_weight, adj, None, N)
            return adj.aggregate(msg, "sum")
        H, d = self.heads, x.size(-1)
        dense = x.view(B, n, d)
        # (a_h * e_i): (B, n*H, d) rows, one per target and head
        query = (dense.unsqueeze(2) * self.att.weight).reshape(B, n * H, d)
        if adj.is_broadcast or (adj.distinct and k > 0):
            # Every pair's logit as one batched product, the pairs that are not edges masked out. On a top-k
            # graph this beats gathering the k sources, (B*n, k, d), and products of (H, d) x (d, k) blocks:
            # a training step of the layer ran 1.55x (d = 16) and 2.06x (d = 32, GraphFM's inner width) as
            # fast at n = 10, k = 5, and 1.17x / 1.83x at n = 39, k = 20 (B 4096, 1 thread, side by side;
            # the second table of benchmarks/bench_graphfm.py).
            logits = torch.bmm(query, dense.transpose(1, 2)).view(B, n, H, n)           # (B, n, H, n)
            source = None
        else:
            source = adj.source(x).reshape(B * n, k, d)                                 # gathered (B*n, k, d)
            logits = torch.bmm(query.view(B * n, H, d), source.transpose(1, 2)).view(B, n, H, k)
        logits = F.leaky_relu(logits, self.negative_slope)
        weight = None
        if edge_weight is not None:                                                     # (B, n, 1, k or n)
            weight = (edge_weight if source is not None or adj.is_broadcast
                      else adj.dense_adjacency(edge_weight)).unsqueeze(2)
        if weight is not None and self.edge_weight_mode == "logit":
            logits = logits * weight
        if source is None and not adj.is_broadcast:
            logits = logits.masked_fill(~adj.mask().unsqueeze(2), float("-inf"))
        # softmax over the neighbours (the last axis). Written out: torch's CPU softmax over a short last axis
        # runs at a fraction of its speed. The max is a constant shift (softmax is invariant to it), so detached.
        alpha = (logits - logits.detach().amax(-1, keepdim=True)).exp()
        alpha = alpha / alpha.sum(-1, keepdim=True)
        self._alpha = (alpha, None if source is not None or adj.is_broadcast else adj)   # read on request
        if self.dropout and self.training:
            alpha = F.dropout(alpha, self.dropout)
        if weight is not None and self.edge_weight_mode == "message":
            alpha = alpha * weight
        if source is None:
            agg = torch.bmm(alpha.reshape(B, n * H, n), dense)                          # (B, n*H, d)
        else:
            agg = torch.bmm(alpha.reshape(B * n, H, k), source)                         # (B*n, H, d)
        return agg.reshape(N, H, d)

    @staticmethod
    def _edge_alpha(stored) -> Tensor:
        """The attention weights kept by the fast path as ``(B, n, k, H)``, in the graph's edge order: read off
        the ``(B, n, H, n)`` pair weights at the edges where the logits were computed for all pairs."""
        alpha, adj = stored
        alpha = alpha.transpose(2, 3)                                                   # (B, n, k or n, H)
        if adj is None:
            return alpha
        B, n, k = adj.shape
        index = adj.local_index().expand(B, n, k).unsqueeze(-1).expand(B, n, k, alpha.size(-1))
        return alpha.gather(2, index)

    def update(self, inputs: Tensor, x: Tensor) -> Tensor:
        """With ``project_after_aggregation``: ``e_i`` times the aggregated ``(N, H, d)`` neighbours, then
        each head's ``W_h`` (one product with a block-diagonal weight); otherwise the identity."""
        if not self.project_after_aggregation:
            return inputs
        N, H, d = inputs.shape
        if self.interaction:
            inputs = inputs * x.reshape(N, 1, d)
        weight = self.lin.weight.view(H, self.out_channels, d)
        if H > 1:
            weight = torch.block_diag(*weight.unbind(0))                                # (H*D, H*d)
        else:
            weight = weight[0]
        return F.linear(inputs.reshape(N, H * d), weight).view(N, H, self.out_channels)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, heads={self.heads}, "
                f"concat={self.concat}, interaction={self.interaction}, edge_weight_mode={self.edge_weight_mode!r}"
                + ("" if self.project_after_aggregation else ", project_after_aggregation=False") + ")")
