"""What a graph layer decided for a batch: the record that explanations are built from."""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field

from torch import Tensor

from ..graph.adjacency import DenseAdj


@dataclass
class LayerRecord:
    """What one layer of a graph model decided for a batch of field graphs.

    A model fills one per layer (see :meth:`fgraph.models.FieldGraphModel.edge_records`); the networkx graphs
    and data-set summaries of :mod:`fgraph.explain` are read off these records, so a model needs no
    networkx or pandas of its own.

    Attributes:
        adj: the layer's neighbourhoods (which edges it used).
        edge_attrs: edge tensors ``(E,)`` or ``(E, H)`` in ``adj``'s flat edge order, e.g. ``{"weight": p,
            "alpha": attention}``; the first one is the edge's weight in summaries.
    """

    adj: DenseAdj
    edge_attrs: dict[str, Tensor] = dc_field(default_factory=dict)


__all__ = ["LayerRecord"]
