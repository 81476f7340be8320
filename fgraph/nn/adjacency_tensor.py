r"""A learned adjacency matrix per interaction order, shared by every instance (FIVES's adjacency tensor)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


def as_thresholds(thresholds: float | Sequence[float], num_layers: int, what: str = "thresholds") -> list[float]:
    """One binarisation threshold per layer from a number or a sequence, checked to lie in ``[0, 1)``."""
    if isinstance(thresholds, (int, float)) and not isinstance(thresholds, bool):
        values = [float(thresholds)] * num_layers
    else:
        try:
            values = [float(t) for t in thresholds]
        except TypeError:
            raise TypeError(f"{what} must be a number or a sequence of {num_layers} numbers, "
                            f"got {thresholds!r}") from None
        if len(values) != num_layers:
            raise ValueError(f"{what} needs one value per order 2..{num_layers + 1} ({num_layers} values), "
                             f"got {len(values)}: {values}")
    bad = [t for t in values if not 0.0 <= t < 1.0]
    if bad:
        raise ValueError(f"{what} must lie in [0, 1), got {bad}")
    return values


def annealed_temperature(epoch: int, start: float, end: float, epochs: int) -> float:
    """Geometric annealing: ``start`` at epoch 1, ``end`` from epoch ``epochs`` on (``start`` if ``epochs < 2``)."""
    if epochs < 2:
        return float(start) if epochs < 1 else float(end)
    t = min(max(epoch - 1, 0), epochs - 1) / (epochs - 1)
    return float(start * (end / start) ** t)


class AdjacencyTensor(nn.Module):
    r"""The adjacency tensor of FIVES (Xie et al., Section 2.4): one global ``n x n`` adjacency per layer.

    Parameters :math:`\mathbf{H} \in \mathbb{R}^{L \times n \times n}` give, with :math:`\mathbf{A}^{(0)} =
    \mathbf{I}`, the recursive soft adjacency of Eq. 7

    .. math::
        \mathbf{A}^{(k)} = (\mathbf{D}^{(k-1)})^{-1}\, \varphi(\mathbf{A}^{(k-1)})\, \sigma(\mathbf{H}^{(k)}),
        \qquad k = 1, \dots, L,

    where :math:`\varphi(a) = [a > t_{k-1}]` binarises the previous layer at a tunable threshold and
    :math:`\mathbf{D}^{(k-1)}` is the diagonal of the row sums of :math:`\varphi(\mathbf{A}^{(k-1)})`: entry
    :math:`A^{(k)}_{ij}` is the mean of :math:`\sigma(H^{(k)}_{cj})` over the fields :math:`c` that field
    :math:`i` crossed at the previous order. A row whose previous layer kept nothing is all zero (its degree
    is taken as 1): a field that generated no feature at order :math:`k` cannot extend one at :math:`k+1`.
    With ``recursive=False`` every layer is independent, :math:`\mathbf{A}^{(k)} = \sigma(\mathbf{H}^{(k)})`
    (the ablation of Section 3.3.1).

    Calling the module returns the adjacencies used for propagation, each entry re-scaled by the
    temperature :math:`\tau` of Eq. 8, :math:`A_{ij} \leftarrow \sigma(\operatorname{logit}(A_{ij}) / \tau)`;
    :meth:`anneal` lowers :math:`\tau` geometrically from ``tau_start`` to ``tau_end`` over ``anneal_epochs``
    epochs, which drives the entries towards 0 and 1. :meth:`soft` gives Eq. 7 itself (no re-scaling), what
    interactive features are read from; :meth:`binary` binarises it.

    Args:
        num_nodes: ``n``, the number of fields.
        num_layers: ``L``, propagation layers (``K - 1`` for interactions up to order ``K``).
        threshold: :math:`t` of :math:`\varphi`, one number or one per layer.
        recursive: Eq. 7 (True) or independent layers (False).
        straight_through: let gradients pass :math:`\varphi` as if it were the identity (straight-through
            estimator), so a layer's loss also reaches the earlier layers' :math:`\mathbf{H}`; False stops them.
        self_loops: allow :math:`A_{ii}`; a field crossed with itself is no new feature (Definition 1), so the
            diagonal is zero by default.
        tau_start, tau_end, anneal_epochs: the temperature schedule (``tau_end = 1`` turns re-scaling off).
        init: initial value of every :math:`H_{ij}` (0.5 puts every edge just above the 0.5 threshold).
        init_std: standard deviation of normal noise added to ``init``.

    Shapes:
        - **output:** a list of ``L`` tensors ``(n, n)``; entry ``[i, j]`` weighs field ``j`` in field ``i``'s
          aggregation (the edge ``i -> j`` of the paper's Figure 2, the message ``j -> i`` in PyG terms)
    """

    def __init__(self, num_nodes: int, num_layers: int, threshold: float | Sequence[float] = 0.5,
                 recursive: bool = True, straight_through: bool = True, self_loops: bool = False,
                 tau_start: float = 1.0, tau_end: float = 0.02, anneal_epochs: int = 10, init: float = 0.5,
                 init_std: float = 0.01):
        super().__init__()
        if int(num_nodes) < 1 or int(num_layers) < 1:
            raise ValueError(f"need num_nodes >= 1 and num_layers >= 1, got {num_nodes} and {num_layers}")
        if not (tau_start > 0 and tau_end > 0):
            raise ValueError(f"temperatures must be > 0, got tau_start={tau_start}, tau_end={tau_end}")
        if int(anneal_epochs) < 0:
            raise ValueError(f"anneal_epochs must be >= 0, got {anneal_epochs}")
        self.num_nodes, self.num_layers = int(num_nodes), int(num_layers)
        self.thresholds = as_thresholds(threshold, self.num_layers, "threshold")
        self.recursive, self.straight_through, self.self_loops = recursive, straight_through, self_loops
        self.tau_start, self.tau_end, self.anneal_epochs = float(tau_start), float(tau_end), int(anneal_epochs)
        self.init, self.init_std = float(init), float(init_std)
        self.weight = nn.Parameter(torch.empty(self.num_layers, self.num_nodes, self.num_nodes))
        # A buffer, so a checkpoint restores the temperature the saved weights were trained at.
        self.register_buffer("tau", torch.tensor(float(tau_start)))
        self.register_buffer("mask", 1.0 - torch.eye(self.num_nodes) if not self_loops
                             else torch.ones(self.num_nodes, self.num_nodes), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, self.init, self.init_std)
        self.tau.fill_(self.tau_start)

    # -- temperature ----------------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        return float(self.tau)

    def set_temperature(self, tau: float) -> None:
        if not tau > 0:
            raise ValueError(f"temperature must be > 0, got {tau}")
        self.tau.fill_(float(tau))

    def anneal(self, epoch: int) -> float:
        """Set :math:`\\tau` for (1-based) ``epoch`` of the schedule and return it."""
        tau = annealed_temperature(epoch, self.tau_start, self.tau_end, self.anneal_epochs)
        self.set_temperature(tau)
        return tau

    # -- Eq. 7 and 8 ----------------------------------------------------------------------------------
    def binarize(self, a: Tensor, threshold: float) -> Tensor:
        r""":math:`\varphi(a) = [a > t]`, straight-through if so configured."""
        hard = (a > threshold).to(a.dtype)
        return a + (hard - a).detach() if self.straight_through else hard

    def soft(self) -> list[Tensor]:
        """The soft adjacencies of Eq. 7, ``[A^(1), ..., A^(L)]``."""
        out, prev = [], None
        probs = torch.sigmoid(self.weight)
        for k in range(self.num_layers):
            if self.recursive and prev is not None:
                degree = prev.sum(1, keepdim=True).clamp(min=1.0)
                a = (prev @ probs[k]) / degree
            else:  # A^(1) = D^(0)^-1 I sigma(H^(1)) = sigma(H^(1))
                a = probs[k]
            a = a * self.mask
            out.append(a)
            prev = self.binarize(a, self.thresholds[k])
        return out

    def binary(self, thresholds: float | Sequence[float] | None = None) -> list[Tensor]:
        """Eq. 7 binarised per layer (default: the thresholds of :math:`\\varphi`), as 0/1 float tensors."""
        ts = self.thresholds if thresholds is None else as_thresholds(thresholds, self.num_layers)
        return [(a > t).to(a.dtype) for a, t in zip(self.soft(), ts)]

    def rescale(self, a: Tensor) -> Tensor:
        """Eq. 8 at the current temperature; exact zeros (masked or empty rows) stay zero."""
        if float(self.tau) == 1.0:
            return a
        scaled = torch.sigmoid(torch.logit(a, eps=1e-6) / self.tau)
        return torch.where(a > 0, scaled, torch.zeros_like(scaled))

    def forward(self) -> list[Tensor]:
        return [self.rescale(a) for a in self.soft()]

    def extra_repr(self) -> str:
        return (f"nodes={self.num_nodes}, layers={self.num_layers}, thresholds={self.thresholds}, "
                f"recursive={self.recursive}, straight_through={self.straight_through}, "
                f"self_loops={self.self_loops}, tau={self.temperature:.4g} "
                f"({self.tau_start:g} -> {self.tau_end:g} over {self.anneal_epochs} epochs)")
