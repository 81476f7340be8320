r"""IFM's field aspect: one importance vector per pair of fields."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class FieldAspect(nn.Module):
    r"""The field-aware factor importance :math:`\mathbf{f}_{ij}` of every pair of fields (IFM, Eq. 4 and 6).

    Factorised (IFM, canonical decomposition, Eq. 6):

    .. math::
        \mathbf{f}_{ij} = \mathbf{D}^\top (\mathbf{U}_{f_i} \odot \mathbf{U}_{f_j}),
        \qquad \mathbf{U} \in \mathbb{R}^{K_F \times n},\ \mathbf{D} \in \mathbb{R}^{K_F \times K}

    with :math:`n K_F + K_F K` parameters, linear in the number of fields. Unfactorised (``factors=None``,
    the paper's IFM⁻): a free vector per unordered field pair, :math:`\mathbf{F} \in \mathbb{R}^{n(n-1)/2 \times K}`.

    :math:`\mathbf{U}` is stored transposed, one row per field (``U.shape == (n, K_F)``). The paper gives no
    initialisation; both variants start at :math:`\mathbf{f}_{ij} \approx \mathbf{1}` (plus noise of
    ``init_std``), so that IFM starts where AFM with :math:`\mathbf{p} = \mathbf{1}` does and the field aspect
    learns departures from "every factor counts". ``init_scale`` :math:`s` moves that start to
    :math:`\mathbf{f}_{ij} \approx s\,\mathbf{1}` (IFM's ``aspect_init="fm"`` takes :math:`s = P`, the number of
    pairs).

    Args:
        num_fields: ``n``.
        out_channels: ``K``, the embedding size the importance vectors weight.
        factors: ``K_F``; ``None`` for the unfactorised :math:`\mathbf{F}`.
        init_std: standard deviation of the initial noise.
        init_scale: :math:`s`, the value every entry of :math:`\mathbf{f}_{ij}` starts near.

    Shapes:
        - **input:** field indices ``(2, P)`` (any pairs of fields, e.g. a graph's ``field[edge_index]``),
          ``field_i != field_j`` for the unfactorised variant
        - **output:** ``(P, K)``
    """

    def __init__(self, num_fields: int, out_channels: int, factors: int | None = 8, init_std: float = 0.01,
                 init_scale: float = 1.0):
        super().__init__()
        if num_fields < 2 or out_channels < 1:
            raise ValueError(f"need num_fields >= 2 and out_channels >= 1, got {num_fields} and {out_channels}")
        if factors is not None and factors < 1:
            raise ValueError(f"factors must be >= 1 (or None for the unfactorised F), got {factors}")
        if not init_scale > 0:
            raise ValueError(f"init_scale must be > 0, got {init_scale}")
        self.init_scale = float(init_scale)
        self.num_fields, self.out_channels, self.factors, self.init_std = num_fields, out_channels, factors, init_std
        if factors is None:
            num_pairs = num_fields * (num_fields - 1) // 2
            self.F = nn.Parameter(torch.empty(num_pairs, out_channels))
            # Row of F for the unordered pair {i, j}; -1 on the diagonal.
            pair_id = torch.full((num_fields, num_fields), -1, dtype=torch.long)
            i, j = torch.triu_indices(num_fields, num_fields, offset=1)
            pair_id[i, j] = pair_id[j, i] = torch.arange(num_pairs)
            self.register_buffer("pair_id", pair_id, persistent=False)
        else:
            self.U = nn.Parameter(torch.empty(num_fields, factors))
            self.D = nn.Parameter(torch.empty(factors, out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            if self.factors is None:
                self.F.normal_(self.init_scale, self.init_std)
            else:
                # U_i ⊙ U_j ≈ 1 and the columns of D sum to ≈ s, so f_ij ≈ s.
                self.U.normal_(1.0, self.init_std)
                self.D.normal_(self.init_scale / self.factors, self.init_std)

    def forward(self, fields: Tensor) -> Tensor:
        if fields.dim() != 2 or fields.size(0) != 2:
            raise ValueError(f"fields must be a (2, P) tensor of field indices, got shape {tuple(fields.shape)}")
        bad = (fields < 0) | (fields >= self.num_fields)
        if bool(bad.any()):
            raise ValueError(f"field index {int(fields[bad][0])} outside 0..{self.num_fields - 1}")
        if self.factors is None:
            rows = self.pair_id[fields[0], fields[1]]
            if bool((rows < 0).any()):
                raise ValueError("the unfactorised field aspect has no vector for a field paired with itself")
            return self.F[rows]
        return (self.U[fields[0]] * self.U[fields[1]]) @ self.D

    def __repr__(self) -> str:
        kind = "unfactorised" if self.factors is None else f"factors={self.factors}"
        return f"{type(self).__name__}(fields={self.num_fields}, {self.out_channels}, {kind})"
