r"""A multi-layer perceptron: the deep part of DeepFM-style models (DeepIFM, INN, the "+" graph heads)."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn


class MLP(nn.Module):
    r"""Fully connected ReLU layers and a plain linear output, as in DeepFM, AutoInt+ and the GraphFM authors'
    code (pytorch-fm's ``MultiLayerPerceptron``, FuxiCTR's ``MLP_Block``):

    .. math::
        \mathbf{z}_0 = \mathbf{x}, \qquad
        \mathbf{z}_l = \mathrm{Dropout}\big(\mathrm{ReLU}(\mathrm{BN}(\mathbf{W}_l \mathbf{z}_{l-1}
        + \mathbf{b}_l))\big) \quad (l = 1..L), \qquad
        \mathbf{y} = \mathbf{W}_{\mathrm{out}} \mathbf{z}_L + \mathbf{b}_{\mathrm{out}}

    with the batch normalisation :math:`\mathrm{BN}` only when ``batch_norm`` (the identity otherwise). With no
    hidden layers it is one linear map. The parameters are named as in PyG's :class:`~torch_geometric.nn.MLP`
    without normalisation (``lins.0.weight``, ...), so state dicts of either load into the other.

    Args:
        in_dim: input width (``n d`` for the concatenated field embeddings).
        hidden: widths of the hidden layers, e.g. ``(400, 400, 400)``; may be empty.
        dropout: dropout probability after each hidden layer's activation (none on the output).
        batch_norm: a :class:`torch.nn.BatchNorm1d` after each hidden linear map, before the ReLU.
        out_dim: output width (1: a logit).

    Shapes:
        - **input:** ``(B, in_dim)``
        - **output:** ``(B, out_dim)``
    """

    def __init__(self, in_dim: int, hidden: Sequence[int] = (), dropout: float = 0.0, batch_norm: bool = False,
                 out_dim: int = 1):
        super().__init__()
        dims = [int(in_dim), *[int(h) for h in hidden], int(out_dim)]
        if min(dims) < 1:
            raise ValueError(f"MLP layer widths must be >= 1, got {dims}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.dims, self.dropout, self.batch_norm = dims, float(dropout), bool(batch_norm)
        self.lins = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(h) for h in dims[1:-1]) if batch_norm else None
        self.drop = nn.Dropout(self.dropout)
        # Drawn a second time, in layer order, as PyG's MLP does: INN and DeepIFM (which used it) keep their
        # initial weights under a seed.
        self.reset_parameters()

    @property
    def in_dim(self) -> int:
        return self.dims[0]

    @property
    def out_dim(self) -> int:
        return self.dims[-1]

    @property
    def hidden(self) -> list[int]:
        return self.dims[1:-1]

    def reset_parameters(self) -> None:
        for lin in self.lins:
            lin.reset_parameters()
        for norm in self.norms or ():
            norm.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        for k, lin in enumerate(self.lins[:-1]):
            x = lin(x)
            if self.norms is not None:
                x = self.norms[k](x)
            x = self.drop(x.relu())
        return self.lins[-1](x)

    def __repr__(self) -> str:
        widths = " -> ".join(str(d) for d in self.dims)
        return f"{type(self).__name__}({widths}, dropout={self.dropout}, batch_norm={self.batch_norm})"
