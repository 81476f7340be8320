"""Deprecated alias of :mod:`fgraph.explain.fives_features` (see :mod:`fgraph.export`)."""
from ..explain.fives_features import FIVESCrossFeatures

__all__ = ["FIVESCrossFeatures"]
