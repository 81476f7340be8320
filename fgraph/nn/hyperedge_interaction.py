r"""Interaction functions on the hyperedges of the field graph (AIM, Eq. 2 and Section 4.2.3)."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: the interaction functions of AIM (Eq. 2): name -> how each hyperedge's value is computed
FUNCTIONS = ("inner", "vector_kernel", "scalar_kernel", "outer")


def as_hyperedges(hyperedges, num_fields: int | None = None) -> Tensor:
    """``hyperedges`` (a ``(P, p)`` tensor or a list of field-index tuples of one length) as a ``(P, p)``
    long tensor, checked: ``p >= 2``, distinct fields within a hyperedge, indices in ``0..num_fields-1``."""
    q = torch.as_tensor(hyperedges, dtype=torch.long)
    if q.dim() != 2 or q.size(1) < 2:
        raise ValueError(f"hyperedges must be a (P, p) tensor of field indices with p >= 2 (one row per "
                         f"interaction of p fields), got shape {tuple(q.shape)}")
    if num_fields is not None and q.numel() and (int(q.min()) < 0 or int(q.max()) >= num_fields):
        raise ValueError(f"hyperedges hold field index {int(q.min()) if int(q.min()) < 0 else int(q.max())}, "
                         f"outside 0..{num_fields - 1}")
    if q.numel():
        ordered = q.sort(1).values
        if bool((ordered[:, 1:] == ordered[:, :-1]).any()):
            row = int((ordered[:, 1:] == ordered[:, :-1]).any(1).nonzero()[0])
            raise ValueError(f"hyperedge {q[row].tolist()} (row {row}) names a field twice; an interaction "
                             f"crosses distinct fields")
    return q


class HyperedgeInteraction(nn.Module):
    r"""One interaction function evaluated on every hyperedge :math:`q = (q_1, \dots, q_p)` of a uniform
    hypergraph over the fields (an edge of the field graph when :math:`p = 2`):

    .. math::
        f_{\mathrm{inner}}(q) &= \textstyle\sum_{k=1}^{d} \prod_{l=1}^{p} e_{q_l k} \\
        f_{\mathrm{vector\_kernel}}(q) &= \textstyle\sum_{k=1}^{d} \kappa_{qk} \prod_{l} e_{q_l k} \\
        f_{\mathrm{scalar\_kernel}}(q) &= \kappa_q \textstyle\sum_{k=1}^{d} \prod_{l} e_{q_l k} \\
        f_{\mathrm{outer}}(q) &= \textstyle\prod_{l=1}^{p} \mathbf{w}_{ql}^\top \mathbf{e}_{q_l}

    The inner product and both kernel products extend to order :math:`p` by element-wise products over the
    :math:`p` embeddings; the outer product :math:`\mathbf{e}_i \otimes \mathbf{e}_j` followed by a linear map is
    approximated, as in the AIM paper, by the rank-one :math:`(\mathbf{w}_1^\top \mathbf{e}_i)(\mathbf{w}_2^\top
    \mathbf{e}_j)` and its order-:math:`p` product. The kernels :math:`\kappa` and the vectors
    :math:`\mathbf{w}` belong to the hyperedge, so the hyperedges are fixed at construction.

    The kernels start at 1, so that both kernel products start equal to the inner product; the
    :math:`\mathbf{w}_{ql}` start normal with standard deviation :math:`1/\sqrt{d}`.

    Args:
        hyperedges: ``(P, p)`` field indices, one row per interaction (e.g. every pair of fields for an IPNN
            or an order-2 search; any ``p >= 2``; ``P`` may be 0).
        function: one of :data:`FUNCTIONS`.
        channels: the embedding size ``d``.

    Shapes:
        - **input:** field embeddings ``(B, n, d)``
        - **output:** ``(B, P)``, one value per hyperedge
    """

    def __init__(self, hyperedges, function: str = "inner", channels: int = 10):
        super().__init__()
        if function not in FUNCTIONS:
            raise ValueError(f"unknown interaction function {function!r}; choose one of {list(FUNCTIONS)}")
        if channels < 1:
            raise ValueError(f"channels (the embedding size) must be >= 1, got {channels}")
        q = as_hyperedges(hyperedges)
        self.function, self.channels = function, int(channels)
        self.register_buffer("hyperedges", q, persistent=False)
        P, p = q.shape
        if function == "vector_kernel":
            self.kernel = nn.Parameter(torch.empty(P, channels))
        elif function == "scalar_kernel":
            self.kernel = nn.Parameter(torch.empty(P))
        elif function == "outer":
            self.weight = nn.Parameter(torch.empty(P, p, channels))
        self.reset_parameters()

    @property
    def order(self) -> int:
        return int(self.hyperedges.size(1))

    @property
    def num_hyperedges(self) -> int:
        return int(self.hyperedges.size(0))

    def reset_parameters(self) -> None:
        if self.function in ("vector_kernel", "scalar_kernel"):
            nn.init.ones_(self.kernel)
        elif self.function == "outer":
            nn.init.normal_(self.weight, std=1.0 / math.sqrt(self.channels))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.size(-1) != self.channels:
            raise ValueError(f"expected field embeddings (B, n, {self.channels}), got shape {tuple(x.shape)}")
        q = self.hyperedges
        if q.numel() and int(q.max()) >= x.size(1):
            raise ValueError(f"a hyperedge names field {int(q.max())}, but the input has {x.size(1)} fields")
        if self.function == "outer":
            # The product over the p fields of w_ql^T e_{q_l}, one slot at a time (no (B, P, p, d) tensor).
            out = (x[:, q[:, 0]] * self.weight[:, 0]).sum(-1)
            for slot in range(1, q.size(1)):
                out = out * (x[:, q[:, slot]] * self.weight[:, slot]).sum(-1)
            return out
        h = x[:, q[:, 0]]
        for slot in range(1, q.size(1)):
            h = h * x[:, q[:, slot]]                                   # (B, P, d): the element-wise product
        if self.function == "vector_kernel":
            return (h * self.kernel).sum(-1)
        out = h.sum(-1)
        return out * self.kernel if self.function == "scalar_kernel" else out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.function}, hyperedges={self.num_hyperedges}, order={self.order}, "
                f"channels={self.channels})")
