"""What the graph heads (GraphFM, Fi-GNN, FIVES) share: embed, propagate on the field graph, read out."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..data.loader import TabularBatch
from ..nn.readout import FieldReadout
from ..nn.records import LayerRecord
from .base import CTRModel, extends, register_model

#: Hidden widths of the deep part of the "+" models (``graphfm+``, ``fignn+``, ``fives+``): those of the BARS /
#: FuxiCTR "+" models (AutoInt+, ...).
PLUS_DEEP_LAYERS: tuple[int, ...] = (400, 400, 400)


class FieldGraphModel(CTRModel):
    r"""Base of the models whose interaction layers run on the field graph.

    A subclass keeps its :class:`~fgraph.nn.FieldEmbedding` in ``self.embedding``, builds its layers and
    ``self.readout`` (a :class:`~fgraph.nn.FieldReadout`) and implements :meth:`propagate`, which returns the
    node states of every layer (and, when asked, what each layer decided).

    What the model learned is read through one protocol, :meth:`edge_records`: per layer, a
    :class:`~fgraph.nn.LayerRecord` of the edges the layer used for each instance and their attributes
    (tensors only). :mod:`fgraph.explain` turns the records into networkx graphs
    (:func:`~fgraph.explain.instance_graphs`) and data-set summaries (:func:`~fgraph.explain.edge_summary`).

    ``state_norm`` (every head takes it) puts a :class:`torch.nn.LayerNorm` on the node states after every
    layer, before they go on to the next layer and to the readout: :math:`\mathbf{h}^{(k)} \leftarrow
    \mathrm{LN}_k(\mathbf{h}^{(k)})`, one per layer. It is what takes the multiplicative heads (GraphFM,
    FIVES) off the first-order plateau: their states are products of embeddings, so at the protocol's
    N(0, 1e-4) initialisation the cross terms are ~1e-8 and the model fits first-order effects only (see
    ``benchmarks/plateau.md``; FIVES on Frappe under ``--protocol bars``: test AUC 0.9376 without, 0.9781 with).

    ``state_norm_eps`` is the norms' variance floor, :math:`\mathrm{LN}(\mathbf{h}) = (\mathbf{h} - \mu) /
    \sqrt{\sigma^2 + \epsilon}`. With torch's default 1e-5 the norm rescales a state only once its variance
    is above 1e-5: on Frappe at the N(0, 1e-4) initialisation GraphFM's first-layer states have a standard
    deviation near 1e-9 and leave the norm near 3e-7, not 1, so the run waits on the plateau until the
    embeddings have grown. A floor far below the states' variance (1e-20) gives them unit scale from the first
    step and removes that wait, but GraphFM then ended lower on Frappe (seed-0 validation AUC 0.9764 against
    0.9802, ``benchmarks/plateau.md``), so the default stays 1e-5.
    A subclass builds the norms with :meth:`_init_state_norm` and applies them with :meth:`normalise_state`.

    The optional deep part (options ``deep_layers``, ``deep_dropout``, ``deep_batch_norm``, the same on every
    subclass and handed to the readout) lives in the readout: an MLP on the concatenated field embeddings
    whose output is added to the logit. :meth:`forward` and :meth:`loss` look the embeddings up once and hand
    the same tensor to :meth:`propagate` and to the readout.
    """

    readout: FieldReadout
    hparam_ranges = {"deep_dropout": (0.0, 1.0, False, True)}

    def propagate(self, batch: TabularBatch, record: bool = False, embeddings: Tensor | None = None
                  ) -> tuple[list[Tensor], list[LayerRecord]]:
        """Node states ``[(B, n, d_l), ...]`` of every layer, and the layers' records if ``record``.

        ``embeddings``: ``self.embedding(batch)`` if the caller has it already (it is looked up otherwise).
        """
        raise NotImplementedError

    def _states(self, batch: TabularBatch) -> tuple[list[Tensor], Tensor]:
        """The node states of every layer and the field embeddings they started from (one lookup)."""
        e = self.embedding(batch)
        return self.propagate(batch, embeddings=e)[0], e

    def forward(self, batch: TabularBatch) -> Tensor:
        return self.readout(*self._states(batch))

    def loss(self, batch: TabularBatch, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        states, e = self._states(batch)
        return self.readout.loss(states, batch.y, loss_fn, embeddings=e)

    def _init_state_norm(self, state_norm: bool, dims: Sequence[int], eps: float = 1e-5) -> None:
        """One LayerNorm per layer of widths ``dims`` if ``state_norm`` (``self.state_norms``), else none;
        ``eps`` is the norms' variance floor (``state_norm_eps``)."""
        eps = float(eps)
        if not eps > 0:
            raise ValueError(f"state_norm_eps must be > 0 (the LayerNorm's variance floor), got {eps}")
        self.state_norm, self.state_norm_eps = bool(state_norm), eps
        self.state_norms = (nn.ModuleList(nn.LayerNorm(int(d), eps=eps) for d in dims) if self.state_norm
                            else None)

    def normalise_state(self, k: int, h: Tensor) -> Tensor:
        """Layer ``k``'s node states ``(N, d_k)`` (or ``(B, n, d_k)``), normalised if ``state_norm``."""
        return h if self.state_norms is None else self.state_norms[k](h)

    @torch.no_grad()
    def edge_records(self, batch: TabularBatch) -> list[LayerRecord]:
        """What every layer decided for ``batch``, computed in evaluation mode without gradients: one
        :class:`~fgraph.nn.LayerRecord` per layer, whose ``adj`` holds the edges ``j -> i`` (field ``i`` used
        field ``j``) of every instance and whose ``edge_attrs`` hold the layer's edge tensors, ``(E,)`` or
        ``(E, H)`` per head, in ``adj``'s flat edge order; the first attribute is the edge's weight.

        The attributes are the model's: GraphFM records ``coefficient``, ``weight`` (the kept score) and
        ``alpha`` (per head); Fi-GNN and FIVES record ``weight``. The model's training mode is restored after.
        """
        with self._evaluating():
            return self.propagate(batch, record=True)[1]


def plus_variant(base: type[FieldGraphModel], name: str, label: str) -> type[FieldGraphModel]:
    """Register ``name`` as ``base`` with the readout's deep part on by default: ``deep_layers`` =
    :data:`PLUS_DEEP_LAYERS`, every other option ``base``'s, and ``deep_dropout`` added to its search space.
    The one definition behind GraphFM+, Fi-GNN+ and FIVES+."""
    @extends(base.__init__, deep_layers=PLUS_DEEP_LAYERS)
    def __init__(self, space, **options):
        base.__init__(self, space, **options)

    doc = (f"{label}+: :class:`{base.__name__}` with the readout's deep part on by default (``deep_layers`` = "
           f":data:`~fgraph.models.field_graph_model.PLUS_DEEP_LAYERS`); every option is {label}'s.")
    cls = type(f"{base.__name__}Plus", (base,), {
        "__init__": __init__, "__doc__": doc, "__module__": base.__module__,
        "search_space": {**(base.search_space or {}), "model.deep_dropout": ("float", 0.0, 0.5)}})
    return register_model(name)(cls)
