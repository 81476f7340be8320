r"""Attention-weighted pooling of pairwise interactions over the edges of each graph (AFM, IFM's feature aspect)."""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

ACTIVATIONS = ("relu", "tanh")
TEMPERATURE_MODES = ("input", "logit")


@lru_cache(maxsize=64)
def upper_pairs(num_nodes: int, device: torch.device = torch.device("cpu"), diagonal: bool = False) -> Tensor:
    """The pairs ``i < j`` of ``num_nodes`` nodes as a ``(2, n(n-1)/2)`` index, in row-major order
    ``(0,1), (0,2), ..., (1,2), ...`` (the order of :func:`itertools.combinations`); with ``diagonal`` the
    pairs ``i <= j``, ``(2, n(n+1)/2)``, ``(0,0), (0,1), ...``."""
    return torch.triu_indices(num_nodes, num_nodes, offset=0 if diagonal else 1, device=device)


class _PairProducts(torch.autograd.Function):
    """``x[..., rows, :] * x[..., cols, :]`` keeping only ``x`` for the backward pass: the two gathered
    ``(.., P, d)`` operands are freed after the product (autograd's own product would keep both), and the
    backward pass gathers again, one operand at a time, straight into the gradient it adds up.

    Why: at B = 4096, n = 39, d = 16 each ``(B, P, d)`` tensor is 194 MB, and on CPU every fresh tensor of that
    size is new pages for the kernel to zero. With autograd's product an INN training step took 1.9-2.5 s
    against 1.8 s for its dense reference (``benchmarks/speed.py``); with this one 1.2-1.7 s, and IFM's
    1.1 s against 1.8-1.9 s (2 threads, three steps each, side by side)."""

    @staticmethod
    def forward(ctx, x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        ctx.save_for_backward(x, rows, cols)
        return x.index_select(-2, rows).mul_(x.index_select(-2, cols))

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, rows, cols = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        # Differentiable ops only, so a double backward (create_graph=True) still works.
        gx = grad.new_zeros(x.shape)
        gx.index_add_(-2, rows, x.index_select(-2, cols).mul_(grad))
        gx.index_add_(-2, cols, x.index_select(-2, rows).mul_(grad))
        return gx, None, None


def pair_products(x: Tensor, pairs: Tensor) -> Tensor:
    r""":math:`\mathbf{x}_i \odot \mathbf{x}_j` for every pair ``(i, j)`` of ``pairs`` ``(2, P)``.

    Works on node rows ``(N, d)`` with a global ``edge_index`` and on dense ``(B, n, d)`` field embeddings
    with local pairs shared by the batch (``(B, P, d)`` out): the node axis is the second to last.
    """
    return _PairProducts.apply(x, pairs[0], pairs[1])


class AttentiveEdgePooling(nn.Module):
    r"""Pools the pairwise interactions of each graph into one vector, weighting every pair by attention
    (AFM, Eq. 4–5; IFM's feature aspect, Eq. 5):

    .. math::
        a'_{ij} &= \mathbf{h}^\top \sigma\big(\mathbf{W} (\mathbf{x}_i \odot \mathbf{x}_j) / \tau + \mathbf{b}\big) \\
        a_{ij} &= \frac{\exp(a'_{ij})}{\sum_{(k,l) \in \mathcal{E}_g} \exp(a'_{kl})} \\
        \mathbf{out}_g &= \sum_{(i,j) \in \mathcal{E}_g} a_{ij}\, \mathbf{s}_{ij} \odot (\mathbf{x}_i \odot \mathbf{x}_j)

    The softmax runs over the pairs :math:`\mathcal{E}_g` of each graph ``g`` (never over a size-1 axis, which
    would make every weight 1). :math:`\sigma` is ReLU (AFM) or tanh (DeepIFM); :math:`\tau = 1` is AFM, IFM uses
    :math:`\tau = 10`. With ``temperature_mode="input"`` (the authors' IFM code and the default) :math:`\tau`
    divides :math:`\mathbf{W}(\mathbf{x}_i \odot \mathbf{x}_j)` as above; ``"logit"`` divides :math:`a'_{ij}`
    instead (IFM paper, Eq. 5). Either way :math:`\tau \to \infty` makes the weights uniform.
    :math:`\mathbf{s}_{ij}` (``pair_scale``, default 1) rescales what is pooled, not the attention: IFM passes its
    field aspect :math:`\mathbf{f}_{ij}`.

    Two paths, same result:

    * **dense** (field graphs): ``x`` is ``(B, n, d)``, ``edge_index`` is ``None`` (all pairs ``i < j``) or a
      ``(2, P)`` index of node pairs shared by all ``B`` graphs; everything runs on ``(B, P, ...)`` tensors.
    * **general** (any PyG graph): ``x`` is ``(N, d)`` node rows, ``edge_index`` ``(2, E)`` lists the pairs (each
      once) and ``batch`` ``(N,)`` the graph of each node; the softmax is PyG's, grouped by graph.

    ``dropout`` applies to the pair vectors that are pooled (AFM's dropout on the pair-wise interaction layer);
    the attention network sees them intact, since AFM found dropout inside it unstable. AFM's L2 on
    :math:`\mathbf{W}` alone is a parameter group of the model, on :attr:`lin` ``.weight``.

    Args:
        in_channels: node feature size ``d``.
        attention_channels: hidden size ``t`` of the attention network (AFM's "attention factor").
        temperature: :math:`\tau > 0`.
        temperature_mode: ``"input"`` or ``"logit"``.
        activation: ``"relu"`` or ``"tanh"``.
        dropout: dropout rate on the pooled pair vectors (training only).

    Shapes:
        - **input:** ``x`` ``(B, n, d)`` or ``(N, d)``; ``edge_index`` ``(2, P)`` / ``(2, E)`` or None (dense
          only); ``batch`` ``(N,)`` (general only; None is one graph); ``pair_scale`` broadcastable to
          ``(B, P, d)`` / ``(E, d)``
        - **output:** ``(B, d)`` (graphs), or with ``reduce=False`` the weighted pair vectors ``(B, P, d)`` /
          ``(E, d)``; with ``return_attention_weights=True`` also ``(pairs, alpha)``, ``alpha`` of shape
          ``(B, P)`` / ``(E,)``
    """

    def __init__(self, in_channels: int, attention_channels: int = 8, temperature: float = 1.0,
                 temperature_mode: str = "input", activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        if in_channels < 1 or attention_channels < 1:
            raise ValueError(f"in_channels and attention_channels must be >= 1, got {in_channels} and "
                             f"{attention_channels}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if temperature_mode not in TEMPERATURE_MODES:
            raise ValueError(f"temperature_mode must be one of {TEMPERATURE_MODES}, got {temperature_mode!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_channels, self.attention_channels = in_channels, attention_channels
        self.temperature, self.temperature_mode = float(temperature), temperature_mode
        self.activation, self.dropout = activation, dropout
        self.lin = nn.Linear(in_channels, attention_channels)              # W, b
        self.att = nn.Linear(attention_channels, 1, bias=False)            # h (a bias would cancel in the softmax)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.zeros_(self.lin.bias)
        nn.init.xavier_uniform_(self.att.weight)

    def scores(self, inter: Tensor) -> Tensor:
        r"""The attention logits :math:`a'_{ij}` (temperature included) of pair vectors ``(..., d)``."""
        if self.temperature_mode == "input" and self.temperature != 1.0:
            hidden = F.linear(inter, self.lin.weight / self.temperature, self.lin.bias)
        else:
            hidden = self.lin(inter)
        hidden = torch.relu(hidden) if self.activation == "relu" else torch.tanh(hidden)
        logits = self.att(hidden).squeeze(-1)
        return logits if self.temperature_mode == "input" else logits / self.temperature

    def forward(self, x: Tensor, edge_index: Tensor | None = None, batch: Tensor | None = None, *,
                pair_scale: Tensor | None = None, num_graphs: int | None = None, reduce: bool = True,
                return_attention_weights: bool = False):
        dense = x.dim() == 3
        if dense:
            pairs = self._dense_pairs(x, edge_index)
            inter = pair_products(x, pairs)                                   # (B, P, d)
            alpha = torch.softmax(self.scores(inter), dim=1)                  # over the pairs of each graph
        else:
            pairs, group, num_graphs = self._general_pairs(x, edge_index, batch, num_graphs)
            inter = pair_products(x, pairs)                                   # (E, d)
            alpha = softmax(self.scores(inter), group, num_nodes=num_graphs)
        if pair_scale is not None:
            try:
                fits = torch.broadcast_shapes(pair_scale.shape, inter.shape) == inter.shape
            except RuntimeError:
                fits = False
            if not fits:
                raise ValueError(f"pair_scale of shape {tuple(pair_scale.shape)} does not broadcast to the pair "
                                 f"vectors {tuple(inter.shape)}")
        values = inter if pair_scale is None else inter * pair_scale
        if self.dropout and self.training:
            values = F.dropout(values, self.dropout)
        if not reduce:
            out = alpha.unsqueeze(-1) * values
        elif dense:
            # A batched (1, P) x (P, d) product: the weighted pair vectors are never stored (nor their gradient).
            out = torch.bmm(alpha.unsqueeze(1), values).squeeze(1)
        else:
            out = scatter(alpha.unsqueeze(-1) * values, group, dim=0, dim_size=num_graphs, reduce="sum")
        if return_attention_weights:
            return out, (pairs, alpha)
        return out

    def _check_x(self, x: Tensor) -> None:
        if x.dim() not in (2, 3) or x.size(-1) != self.in_channels:
            raise ValueError(f"x must be (N, {self.in_channels}) node rows or (B, n, {self.in_channels}) field "
                             f"embeddings, got shape {tuple(x.shape)}")

    def _check_index(self, index: Tensor, num_nodes: int, what: str) -> Tensor:
        if not isinstance(index, Tensor) or index.dim() != 2 or index.size(0) != 2:
            shape = tuple(index.shape) if isinstance(index, Tensor) else type(index).__name__
            raise ValueError(f"{what} must be a (2, num_pairs) index tensor, got {shape}")
        if index.dtype != torch.long:
            raise ValueError(f"{what} must hold int64 node indices, got dtype {index.dtype}")
        if index.size(1) == 0:
            raise ValueError(f"{what} has no pairs: there is nothing to pool")
        bad = (index < 0) | (index >= num_nodes)
        if bool(bad.any()):
            raise ValueError(f"{what} refers to node {int(index[bad][0])}, outside 0..{num_nodes - 1}")
        return index

    def _dense_pairs(self, x: Tensor, pairs: Tensor | None) -> Tensor:
        self._check_x(x)
        n = x.size(1)
        if pairs is None:
            if n < 2:
                raise ValueError(f"pairwise pooling needs at least 2 fields, got {n}")
            return upper_pairs(n, x.device)
        return self._check_index(pairs, n, "edge_index (local pairs of the dense path)")

    def _general_pairs(self, x, edge_index, batch, num_graphs) -> tuple[Tensor, Tensor, int]:
        self._check_x(x)
        if edge_index is None:
            raise ValueError("node rows (N, d) need an edge_index listing the pairs to pool")
        edge_index = self._check_index(edge_index, x.size(0), "edge_index")
        if batch is None:
            group = torch.zeros(edge_index.size(1), dtype=torch.long, device=x.device)
            return edge_index, group, 1
        if batch.dim() != 1 or batch.size(0) != x.size(0):
            raise ValueError(f"batch must have one graph id per node ({x.size(0)}), got shape {tuple(batch.shape)}")
        group = batch[edge_index[0]]
        split = group != batch[edge_index[1]]
        if bool(split.any()):
            e = int(split.nonzero()[0])
            raise ValueError(f"edge {e} ({int(edge_index[0, e])} -> {int(edge_index[1, e])}) joins nodes of "
                             f"different graphs; pairs are pooled per graph")
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        return edge_index, group, num_graphs

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, attention={self.attention_channels}, "
                f"temperature={self.temperature:g}, mode={self.temperature_mode!r}, activation={self.activation!r}, "
                f"dropout={self.dropout})")
