"""Deprecated: the old name of :mod:`fgraph.explain` (and :class:`fgraph.nn.LayerRecord`), kept so that old
imports keep working; it warns once when imported. It holds no code of its own.

``fgraph.export.instance_graphs(records, names, values)`` and ``edge_weight_summary(batches, record_fn, names)``
are :func:`fgraph.explain.records_to_graphs` and :func:`fgraph.explain.mean_edge_weights`; given a model, use
:func:`fgraph.explain.instance_graphs` and :func:`fgraph.explain.edge_summary`.
"""
import warnings

from ..explain.graphs import mean_edge_weights as edge_weight_summary, records_to_graphs as instance_graphs
from ..nn.records import LayerRecord

warnings.warn("fgraph.export is deprecated: import from fgraph.explain (LayerRecord: from fgraph.nn)",
              DeprecationWarning, stacklevel=2)

__all__ = ["LayerRecord", "instance_graphs", "edge_weight_summary"]
