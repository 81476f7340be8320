"""Deprecated alias of :mod:`fgraph.explain.cross_features` (see :mod:`fgraph.export`)."""
from ..explain.cross_features import adjacency_graphs, derive_interactions

__all__ = ["derive_interactions", "adjacency_graphs"]
