r"""The readout shared by the graph models (GraphFM, Fi-GNN, FIVES): per-layer node states to a logit."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from .mlp import MLP

POOLINGS = ("mean", "flatten", "attention")
GATES = ("node", "flat")


class _Head(nn.Module):
    """One output of the readout: a pooling of ``(B, n, D)`` states followed by a projection to a logit."""

    def __init__(self, num_fields: int, dim: int, pooling: str, gate: str = "node"):
        super().__init__()
        self.pooling, self.gate_from = pooling, gate
        if pooling == "mean":
            self.proj = nn.Linear(dim, 1)
        elif pooling == "flatten":
            self.proj = nn.Linear(num_fields * dim, 1)
        else:
            self.score = nn.Linear(dim, 1)
            # "flat": every field's weight sees all states (the gate of the RecBole and FuxiCTR ports).
            self.gate = nn.Linear(dim, 1) if gate == "node" else nn.Linear(num_fields * dim, num_fields)
            self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, h: Tensor) -> Tensor:
        if self.pooling == "mean":
            return self.proj(h.mean(1)).squeeze(-1)
        if self.pooling == "flatten":
            return self.proj(h.reshape(h.size(0), -1)).squeeze(-1)
        if self.gate_from == "node":
            weight = torch.sigmoid(self.gate(h)).squeeze(-1)                    # (B, n)
        else:
            weight = torch.sigmoid(self.gate(h.reshape(h.size(0), -1)))         # (B, n)
        return (weight * self.score(h).squeeze(-1)).sum(1) + self.bias


class FieldReadout(nn.Module):
    r"""Turns the node states of ``L`` layers into one logit per graph.

    The states of the chosen layers are concatenated per node, :math:`\mathbf{h}_i = \mathbf{e}^{(1)}_i
    \Vert \dots \Vert \mathbf{e}^{(L)}_i`, then pooled over the ``n`` fields:

    * ``pooling="mean"`` (GraphFM, Eq. 15–17): :math:`\hat y = \mathbf{p}^\top \frac1n \sum_i \mathbf{h}_i + b`;
    * ``pooling="flatten"`` (FIVES, Eq. 3): :math:`\hat y = \mathbf{W} [\mathbf{h}_1 : \dots : \mathbf{h}_n] + b`;
    * ``pooling="attention"`` (Fi-GNN's attentional scoring):
      :math:`\hat y = \sum_i \sigma(\mathbf{w}_g^\top \mathbf{h}_i + b_g)\,(\mathbf{w}_s^\top \mathbf{h}_i + b_s) + b`;
      with ``gate="flat"`` the weights come from all states at once,
      :math:`\sigma(\mathbf{W}_g [\mathbf{h}_1 : \dots : \mathbf{h}_n] + \mathbf{b}_g) \in \mathbb{R}^n`.

    With ``per_layer=True`` every layer gets its own output instead (FIVES, Eq. 3–4): the training loss is the
    mean of the per-layer losses and the prediction is the mean of the per-layer logits.

    With ``deep_layers`` the readout has a deep part too (the "+" models; the GraphFM authors' code, AutoInt+):
    an :class:`~fgraph.nn.MLP` on the concatenated field embeddings :math:`\mathbf{e}_1, \dots, \mathbf{e}_n`
    (the input of the interaction layers, not their states), whose output is added to the logit,

    .. math::
        \hat y = \hat y_{\mathrm{graph}} + \mathrm{MLP}([\mathbf{e}_1 : \dots : \mathbf{e}_n]).

    With ``per_layer`` it is added to every per-layer logit, :math:`\hat y_k = \hat y_{\mathrm{graph},k} +
    \mathrm{MLP}(\cdot)`: each per-layer loss sees the deep part, and the prediction (their mean) is the mean
    of the graph logits plus the deep logit, counted once.

    Args:
        num_fields: ``n``.
        layer_dims: state size of each layer.
        pooling: ``"mean"`` (default), ``"flatten"`` or ``"attention"``.
        per_layer: one output per layer.
        gate: for ``pooling="attention"``: each field's weight from its own state (``"node"``, the paper) or
            from the flattened states of all fields (``"flat"``).
        layers: which layers the readout uses (indices into the state list, default all; e.g. ``[2]`` reads
            only the third layer, GraphFM's "-K" ablation).
        embed_dim: size ``d`` of the field embeddings, the deep part's input being ``n d`` wide (needed with
            ``deep_layers``).
        deep_layers: hidden widths of the deep part, e.g. ``(400, 400, 400)``; None or empty: no deep part.
        deep_dropout: dropout after each hidden layer of the deep part.
        deep_batch_norm: batch normalisation in each hidden layer of the deep part.

    Shapes:
        - **input:** a list of ``L`` tensors ``(B, n, d_l)``; with a deep part also the field embeddings
          ``(B, n, d)``
        - **output:** ``(B,)`` logits (:meth:`layer_logits`: ``(B, L')``)
    """

    def __init__(self, num_fields: int, layer_dims: Sequence[int], pooling: str = "mean", per_layer: bool = False,
                 layers: Sequence[int] | None = None, gate: str = "node", embed_dim: int | None = None,
                 deep_layers: Sequence[int] | None = None, deep_dropout: float = 0.0, deep_batch_norm: bool = False):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if gate not in GATES:
            raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
        self.num_fields, self.layer_dims = num_fields, list(layer_dims)
        self.layers = list(range(len(self.layer_dims))) if layers is None else [int(i) for i in layers]
        bad = [i for i in self.layers if not -len(self.layer_dims) <= i < len(self.layer_dims)]
        if bad or not self.layers:
            raise ValueError(f"layers {self.layers} must index the {len(self.layer_dims)} layer states")
        self.pooling, self.per_layer, self.gate = pooling, per_layer, gate
        dims = [self.layer_dims[i] for i in self.layers]
        if per_layer:
            self.heads = nn.ModuleList(_Head(num_fields, d, pooling, gate) for d in dims)
        else:
            self.heads = nn.ModuleList([_Head(num_fields, sum(dims), pooling, gate)])
        self.deep: MLP | None = None
        if deep_layers:
            if embed_dim is None:
                raise ValueError("a readout with deep_layers needs embed_dim (the size of the field embeddings)")
            self.deep = MLP(num_fields * int(embed_dim), deep_layers, deep_dropout, deep_batch_norm)

    def reset_parameters(self) -> None:
        for module in self.heads.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()
            elif isinstance(module, _Head) and module.pooling == "attention":
                nn.init.zeros_(module.bias)
        if self.deep is not None:
            self.deep.reset_parameters()

    def deep_logit(self, embeddings: Tensor) -> Tensor:
        r"""``(B,)``: the deep part's logit, :math:`\mathrm{MLP}([\mathbf{e}_1 : \dots : \mathbf{e}_n])`."""
        if self.deep is None:
            raise RuntimeError("this readout has no deep part (deep_layers is empty)")
        if embeddings is None:
            raise ValueError("this readout has a deep part: pass the field embeddings (B, n, d) too")
        flat = embeddings.reshape(embeddings.size(0), -1)
        if flat.size(1) != self.deep.in_dim:
            raise ValueError(f"the deep part takes {self.deep.in_dim} embedding values per row "
                             f"({self.num_fields} fields), got embeddings of shape {tuple(embeddings.shape)}")
        return self.deep(flat).squeeze(-1)

    def layer_logits(self, states: Sequence[Tensor], embeddings: Tensor | None = None) -> Tensor:
        """``(B, L')``: one logit per head (one head unless ``per_layer``), each plus the deep logit if any."""
        if len(states) != len(self.layer_dims):
            raise ValueError(f"expected {len(self.layer_dims)} layer states, got {len(states)}")
        chosen = [states[i] for i in self.layers]
        if self.per_layer:
            logits = torch.stack([head(h) for head, h in zip(self.heads, chosen)], dim=1)
        else:
            logits = self.heads[0](torch.cat(chosen, dim=-1)).unsqueeze(1)
        if self.deep is not None:
            logits = logits + self.deep_logit(embeddings).unsqueeze(1)
        return logits

    def forward(self, states: Sequence[Tensor], embeddings: Tensor | None = None) -> Tensor:
        """``(B,)`` logits. ``embeddings`` ``(B, n, d)``: the field embeddings, used (and needed) only by
        the deep part."""
        return self.layer_logits(states, embeddings).mean(1)

    def loss(self, states: Sequence[Tensor], target: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor],
             embeddings: Tensor | None = None) -> Tensor:
        """The training loss: averaged over the per-layer outputs when ``per_layer``."""
        logits = self.layer_logits(states, embeddings)
        return torch.stack([loss_fn(logits[:, k], target) for k in range(logits.size(1))]).mean()

    def extra_repr(self) -> str:
        return f"fields={self.num_fields}, layer_dims={self.layer_dims}, pooling={self.pooling!r}, " \
               f"per_layer={self.per_layer}, layers={self.layers}" + \
               (f", gate={self.gate!r}" if self.pooling == "attention" else "")
