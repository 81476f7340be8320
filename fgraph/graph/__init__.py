"""Field graphs: one node per field, one graph per row."""
from .adjacency import DenseAdj
from .field_graph import field_graph, to_dense, to_flat

__all__ = ["DenseAdj", "field_graph", "to_dense", "to_flat"]
