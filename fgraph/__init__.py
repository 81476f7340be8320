"""fgraph: feature-interaction learning on field graphs for tabular data, built on PyTorch Geometric."""
__version__ = "0.1.0"
