"""Models: each a short composition of the layers in :mod:`fgraph.nn`."""
from .base import MODELS, CTRModel, build_model, extends, register_model
from .fm import FM
from .lr import LogisticRegression

__all__ = ["MODELS", "CTRModel", "build_model", "extends", "register_model", "FM",
           "LogisticRegression"]
from .field_graph_model import PLUS_DEEP_LAYERS, FieldGraphModel  # noqa: E402
from .graphfm import GraphFM, GraphFMPlus  # noqa: E402

__all__ += ["FieldGraphModel", "PLUS_DEEP_LAYERS", "GraphFM", "GraphFMPlus"]
from .fignn import FiGNN, FiGNNPlus  # noqa: E402

__all__ += ["FiGNN", "FiGNNPlus"]
from .fives import FIVES, FIVESPlus  # noqa: E402

__all__ += ["FIVES", "FIVESPlus"]
from .afm import AFM, AttentivePairModel  # noqa: E402
from .ifm import IFM, INN, DeepIFM  # noqa: E402

__all__ += ["AFM", "AttentivePairModel", "IFM", "INN", "DeepIFM"]
from .aim import AIM, AIM_BASES  # noqa: E402

__all__ += ["AIM", "AIM_BASES"]
from .deepfm import DeepFM, EmbeddingMLPModel  # noqa: E402
from .ipnn import IPNN  # noqa: E402

__all__ += ["DeepFM", "EmbeddingMLPModel", "IPNN"]
