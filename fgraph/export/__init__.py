"""Export: learned interaction graphs as networkx graphs and data-set level summaries."""
from .graphs import LayerRecord, edge_weight_summary, instance_graphs

__all__ = ["LayerRecord", "instance_graphs", "edge_weight_summary"]
