r"""AIM's architecture gates: one scalar per interaction (FIS, IFS) and one per embedding dimension (EDS)."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class InteractionGate(nn.Module):
    r"""Gated, batch-normalised interaction values (AIM Eq. 12-14 with the normalisation of Section 3.6):

    .. math::
        z_q = \alpha_q \cdot \frac{v_q - \mu_{\mathcal B}(v_q)}{\sqrt{\sigma^2_{\mathcal B}(v_q) + \epsilon}}

    for every interaction (or interaction-function pair) :math:`q`: a batch normalisation without scale and
    shift, then the architecture parameter :math:`\alpha_q`. The normalisation removes the scale that
    :math:`v_q` and :math:`\alpha_q` would otherwise trade between them, so that :math:`\alpha_q` alone tells
    how much the interaction counts; an optimiser with an :math:`\ell_1` pull (GRDA) then sets useless gates to
    exactly zero. In evaluation mode the running statistics are used, as in any batch normalisation.

    Args:
        num: the number of gated values ``P``.
        init: the initial value of every :math:`\alpha_q` (0.6 in the authors' code).
        batch_norm: False: no normalisation (:math:`z_q = \alpha_q v_q`).
        momentum, eps: of the batch normalisation (PyTorch's defaults).

    Shapes:
        - **input:** ``(B, P)``
        - **output:** ``(B, P)``
    """

    def __init__(self, num: int, init: float = 0.6, batch_norm: bool = True, momentum: float = 0.1,
                 eps: float = 1e-5):
        super().__init__()
        if num < 0:
            raise ValueError(f"the number of gates must be >= 0, got {num}")
        self.num, self.init, self.batch_norm = int(num), float(init), bool(batch_norm)
        self.alpha = nn.Parameter(torch.empty(self.num))
        self.norm = (nn.BatchNorm1d(self.num, affine=False, momentum=momentum, eps=eps)
                     if self.batch_norm and self.num else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.alpha, self.init)
        if self.norm is not None:
            self.norm.reset_running_stats()

    def normalise(self, v: Tensor) -> Tensor:
        """The values before the gate: batch-normalised (or as they are without ``batch_norm``)."""
        if v.dim() != 2 or v.size(1) != self.num:
            raise ValueError(f"expected (B, {self.num}) interaction values, got shape {tuple(v.shape)}")
        return v if self.norm is None else self.norm(v)

    def forward(self, v: Tensor) -> Tensor:
        return self.normalise(v) * self.alpha

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.num}, init={self.init}, batch_norm={self.batch_norm})"


class DimensionGate(nn.Module):
    r"""AIM's embedding-dimension gate (EDS, Eq. 15): every field's embedding scaled coordinate-wise,
    :math:`\mathbf{e}'_i = \boldsymbol\beta_i \odot \mathbf{e}_i`, with :math:`\boldsymbol\beta \in
    \mathbb{R}^{n \times d}`. The coordinates whose :math:`\beta_{ik}` an :math:`\ell_1`-pulling optimiser
    (GRDA) sets to zero are the dimensions field :math:`i` does without (Eq. 16-17,
    :meth:`kept_coordinates`).

    Args:
        num_fields: ``n``.
        channels: ``d``.
        init: the initial value of every :math:`\beta_{ik}`.

    Shapes:
        - **input:** ``(B, n, d)``
        - **output:** ``(B, n, d)``
    """

    def __init__(self, num_fields: int, channels: int, init: float = 1.0):
        super().__init__()
        if num_fields < 1 or channels < 1:
            raise ValueError(f"need num_fields >= 1 and channels >= 1, got {num_fields} and {channels}")
        self.num_fields, self.channels, self.init = int(num_fields), int(channels), float(init)
        self.beta = nn.Parameter(torch.empty(self.num_fields, self.channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.beta, self.init)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.num_fields, self.channels):
            raise ValueError(f"expected field embeddings (B, {self.num_fields}, {self.channels}), "
                             f"got shape {tuple(x.shape)}")
        return x * self.beta

    @torch.no_grad()
    def kept_coordinates(self) -> list[list[int]]:
        """Per field, the coordinates whose gate is not zero (Eq. 17), in order."""
        return [torch.nonzero(row != 0).flatten().tolist() for row in self.beta]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fields={self.num_fields}, channels={self.channels}, init={self.init})"
