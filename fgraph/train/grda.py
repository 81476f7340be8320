r"""GRDA: generalized regularized dual averaging (Chao & Cheng, 2019), the optimiser that AutoFIS and AIM
drive their architecture gates with, so that the gates of unhelpful interactions end at exactly zero.

Per parameter :math:`\theta` with initial value :math:`\theta_0`, learning rate :math:`\gamma` and gradients
:math:`g_1, g_2, \dots`, step :math:`t = 1, 2, \dots` is

.. math::
    v_t = \theta_0 - \gamma \textstyle\sum_{i=1}^{t} g_i, \qquad
    \ell_1(t) = c\,\gamma^{1/2 + \mu}\, t^{\mu}, \qquad
    \theta_t = \operatorname{sign}(v_t)\,\max\big(|v_t| - \ell_1(t),\ 0\big)

(AIM's Eq. 21: the minimiser of :math:`\alpha^\top(-\alpha_0 + \gamma\sum g) + g(t,\gamma)\lVert\alpha\rVert_1
+ \tfrac12\lVert\alpha\rVert_2^2` with :math:`g(t, \gamma) = c\gamma^{1/2}(t\gamma)^\mu`).
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

from ..errors import ConfigError

#: what the per-parameter state holds (see :class:`GRDA`)
STATE_KEYS = ("step", "accumulator", "l1")


def l1_threshold(lr: float, c: float, mu: float, step: int) -> float:
    r"""The soft threshold :math:`c\,\mathrm{lr}^{1/2+\mu}\,t^{\mu}` that GRDA applies after ``step`` steps
    at the constant learning rate ``lr`` (0 before the first step)."""
    return c * math.pow(lr, 0.5 + mu) * math.pow(step, mu)


class GRDA(torch.optim.Optimizer):
    r"""Generalized regularized dual averaging: dual averaging of the gradients, soft-thresholded by an
    :math:`\ell_1` threshold that grows with the number of steps, so that coordinates whose gradients do not
    keep pushing them away from zero become *exactly* zero (and stay there while their gradients stay small).

    Each parameter keeps an accumulator :math:`v`, its initial value :math:`\theta_0` at its first step
    (the parameter's value then). Step :math:`t` (counting from 1, per parameter) is

    .. math::
        v \leftarrow v - \gamma_t\, g_t, \qquad
        \ell_1 \leftarrow \ell_1 + c\,\gamma_t^{1/2+\mu}\,\big(t^{\mu} - (t-1)^{\mu}\big), \qquad
        \theta \leftarrow \operatorname{sign}(v)\,\max(|v| - \ell_1,\ 0),

    with :math:`\gamma_t` the parameter group's learning rate at that step. At a constant learning rate the
    threshold is :math:`\ell_1(t) = c\,\gamma^{1/2+\mu} t^{\mu}` (:func:`l1_threshold`), AIM's Eq. 21; when the
    learning rate changes (the trainer's ``lr_schedule="plateau"``), it keeps the threshold reached so far and
    grows by the increments at the new rate, as the authors' TensorFlow and PyTorch code do: a reduced
    learning rate never shrinks the threshold and revives gates that were already zero.

    How it differs from Adam (or SGD): there is no momentum and no per-coordinate scaling; the parameter is
    not moved from its last value but recomputed from the accumulated gradients, so a value written into the
    parameter between steps is overwritten. With ``c=0`` it is plain SGD. "Exact zeros" means the parameter
    holds ``0.0`` (compared with ``== 0``; never a small residue), which is what makes a gate prunable.

    Args:
        params: parameters or parameter groups; a group may set its own ``lr``, ``c`` and ``mu``.
        lr: the learning rate :math:`\gamma` (> 0); as a rule the learning rate SGD would take.
        c: the scale of the threshold (>= 0; 0 turns the sparsity off). Larger is sparser, mostly early on.
            Default 0.005, the authors' default (gRDA's README and TensorFlow code) and AIM's Criteo setting
            (AIM uses c=0.05 on Avazu).
        mu: how fast the threshold grows with the steps (> 0; the authors advise 0.5 < mu < 1). Larger is
            sparser. Default 0.7, the authors' default (AIM uses 0.6 on Avazu, 0.9 on Criteo).

    State (per parameter, in :meth:`state_dict`): ``step`` (a Python int, the steps taken), ``accumulator``
    (:math:`v`, a tensor like the parameter) and ``l1`` (a Python float, the threshold reached).

    Raises:
        ConfigError: (a ``ValueError``) ``lr``, ``c`` or ``mu`` out of range, here or in a parameter group,
            or a group with a non-zero ``weight_decay`` (GRDA's threshold is its regulariser).
        RuntimeError: from :meth:`step`, for a parameter with a sparse gradient.
    """

    def __init__(self, params: Iterable, lr: float = 0.01, c: float = 0.005, mu: float = 0.7):
        super().__init__(params, dict(lr=lr, c=c, mu=mu))

    def add_param_group(self, param_group: dict) -> None:
        """Add a parameter group, checking its ``lr``, ``c`` and ``mu`` (its own or the defaults)."""
        where = f"GRDA parameter group {param_group.get('name')!r}" if "name" in param_group else "GRDA"
        lr, c, mu = (param_group.get(k, self.defaults[k]) for k in ("lr", "c", "mu"))
        for name, value, ok, expect, fix in (
                ("lr", lr, lambda x: x > 0, "> 0", "e.g. lr=0.01, the learning rate SGD would take"),
                ("c", c, lambda x: x >= 0, ">= 0", "e.g. c=0.005; c=0 turns the sparsity off"),
                ("mu", mu, lambda x: x > 0, "> 0", "e.g. mu=0.7; 0.5 < mu < 1 is the advised range")):
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if isinstance(value, bool) or not math.isfinite(number) or not ok(number):
                raise ConfigError(f"{where}: option {name!r} must be a finite number {expect}, got {value!r}; "
                                  f"pass {fix}")
        decay = param_group.get("weight_decay", 0.0)
        if decay:
            raise ConfigError(f"{where}: GRDA takes no weight decay (its l1 threshold is its regulariser), got "
                              f"weight_decay={decay!r}; leave the group's weight decay at 0, or shape the "
                              f"sparsity with c and mu")
        super().add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One GRDA step on every parameter that has a gradient (others are left as they are).

        Args:
            closure: re-evaluates the model and returns the loss (optional; run with gradients enabled).

        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, c, mu = float(group["lr"]), float(group["c"]), float(group["mu"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"GRDA does not support sparse gradients (a parameter of shape "
                                       f"{tuple(p.shape)} has one); give it a dense gradient (an embedding "
                                       f"built with sparse=False), or step it with another optimiser")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["accumulator"] = p.detach().clone(memory_format=torch.preserve_format)
                    state["l1"] = 0.0
                t = int(state["step"]) + 1
                state["step"] = t
                state["l1"] = float(state["l1"]) + (l1_threshold(lr, c, mu, t) - l1_threshold(lr, c, mu, t - 1))
                v = state["accumulator"]
                v.add_(p.grad, alpha=-lr)
                shrunk = v.abs().sub_(state["l1"]).clamp_(min=0.0).mul_(v.sign())
                # + 0.0 turns the -0.0 of a zeroed negative coordinate into 0.0 (and changes nothing else).
                p.copy_(shrunk.add_(0.0))
        return loss


__all__ = ["GRDA", "l1_threshold", "STATE_KEYS"]
