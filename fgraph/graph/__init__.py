"""Field graphs: one node per field, one graph per row."""
from .adjacency import DenseAdj
from .field_graph import batch_graph, field_graph, graph_batches, to_dense, to_flat

__all__ = ["DenseAdj", "batch_graph", "field_graph", "graph_batches", "to_dense", "to_flat"]
