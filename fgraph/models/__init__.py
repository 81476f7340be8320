"""Models: each a short composition of the layers in :mod:`fgraph.nn`."""
from .base import MODELS, CTRModel, OptimConfig, OptimizerSpec, build_model, register_model
from .fm import FM
from .lr import LogisticRegression

__all__ = ["MODELS", "CTRModel", "OptimConfig", "OptimizerSpec", "build_model", "register_model", "FM",
           "LogisticRegression"]
from .field_graph_model import FieldGraphModel  # noqa: E402
from .graphfm import GraphFM  # noqa: E402

__all__ += ["FieldGraphModel", "GraphFM"]
from .fignn import FiGNN  # noqa: E402

__all__ += ["FiGNN"]
from .fives import FIVES  # noqa: E402

__all__ += ["FIVES"]
from .afm import AFM, AttentivePairModel  # noqa: E402
from .ifm import IFM, INN, DeepIFM  # noqa: E402

__all__ += ["AFM", "AttentivePairModel", "IFM", "INN", "DeepIFM"]
