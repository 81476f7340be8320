"""Deprecated alias of :mod:`fgraph.explain.graphs` (see :mod:`fgraph.export`)."""
from ..explain.graphs import mean_edge_weights as edge_weight_summary, records_to_graphs as instance_graphs
from ..nn.records import LayerRecord

__all__ = ["LayerRecord", "instance_graphs", "edge_weight_summary"]
