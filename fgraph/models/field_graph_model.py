"""What the graph heads (GraphFM, Fi-GNN, FIVES) share: embed, propagate on the field graph, read out."""
from __future__ import annotations

from typing import Callable

import networkx as nx
import pandas as pd
from torch import Tensor

from ..data.loader import TabularBatch
from ..export.graphs import LayerRecord, edge_weight_summary, instance_graphs
from ..nn.readout import FieldReadout
from .base import CTRModel, register_model

#: Hidden widths of the deep part of the "+" models (``graphfm+``, ``fignn+``, ``fives+``): those of the BARS /
#: FuxiCTR "+" models (AutoInt+, ...).
PLUS_DEEP_LAYERS: tuple[int, ...] = (400, 400, 400)


class FieldGraphModel(CTRModel):
    """Base of the models whose interaction layers run on the field graph.

    A subclass keeps its :class:`~fgraph.nn.FieldEmbedding` in ``self.embedding``, builds its layers and
    ``self.readout`` (a :class:`~fgraph.nn.FieldReadout`) and implements :meth:`propagate`, which returns the
    node states of every layer (and, when asked, what each layer decided, for export).

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

    def interaction_graphs(self, batch: TabularBatch, encoder=None) -> list[list[nx.DiGraph]]:
        """``graphs[b][layer]``: the interaction graph the model used for instance ``b`` at each layer.

        Nodes are named by field; with the fitted ``encoder`` they carry the instance's decoded ``value``
        (otherwise its id). Edge ``j -> i`` carries the layer's edge attributes (see :meth:`propagate`).
        """
        was_training = self.training
        self.eval()
        try:
            _, records = self.propagate(batch, record=True)
        finally:
            self.train(was_training)
        names = self.space.names
        ids = batch.ids.cpu().tolist()
        if encoder is not None:
            values = [[encoder.value_of(name, i) for name, i in zip(names, row)] for row in ids]
        else:
            values = ids
        return instance_graphs(records, names, values)

    def interaction_summary(self, batches, attr: str | None = None) -> list[pd.DataFrame]:
        """Mean edge weight of every field pair over ``batches`` (e.g. a FieldLoader), one frame per layer."""
        was_training = self.training
        self.eval()
        try:
            return edge_weight_summary(batches, lambda b: self.propagate(b, record=True)[1], self.space.names, attr)
        finally:
            self.train(was_training)


def plus_variant(base: type[FieldGraphModel], name: str, label: str) -> type[FieldGraphModel]:
    """Register ``name`` as ``base`` with the readout's deep part on by default: ``deep_layers`` =
    :data:`PLUS_DEEP_LAYERS`, every other option ``base``'s, and ``deep_dropout`` added to its search space.
    The one definition behind GraphFM+, Fi-GNN+ and FIVES+."""
    from .afm import extends

    @extends(base.__init__, deep_layers=PLUS_DEEP_LAYERS)
    def __init__(self, space, **options):
        base.__init__(self, space, **options)

    doc = (f"{label}+: :class:`{base.__name__}` with the readout's deep part on by default (``deep_layers`` = "
           f":data:`~fgraph.models.field_graph_model.PLUS_DEEP_LAYERS`); every option is {label}'s.")
    cls = type(f"{base.__name__}Plus", (base,), {
        "__init__": __init__, "__doc__": doc, "__module__": base.__module__,
        "search_space": {**(base.search_space or {}), "model.deep_dropout": ("float", 0.0, 0.5)}})
    return register_model(name)(cls)
