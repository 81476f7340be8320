"""Layers: field embeddings, the FM term, message-passing operators with a field-graph fast path, readout."""
from .adjacency_propagation import AdjacencyPropagation
from .adjacency_tensor import AdjacencyTensor
from .edge_attention import EdgeAttention
from .edge_scorer import EdgeScorer
from .embedding import FieldEmbedding
from .field_self_attention import FieldSelfAttention
from .fieldwise_linear import FieldwiseLinear
from .fm import FMInteraction
from .gated_field_conv import GatedFieldConv
from .interaction_attention import InteractionAttention
from .linear import FieldLinear
from .message_passing import FieldMessagePassing, edge_softmax
from .mlp import MLP
from .readout import FieldReadout
from .records import LayerRecord
from .topk_edges import TopKEdges, topk_per_target

__all__ = ["FieldEmbedding", "FieldLinear", "FMInteraction", "FieldMessagePassing", "edge_softmax", "EdgeScorer",
           "TopKEdges", "topk_per_target", "InteractionAttention", "FieldReadout", "LayerRecord"]
__all__ += ["EdgeAttention", "FieldSelfAttention", "FieldwiseLinear", "GatedFieldConv"]
__all__ += ["AdjacencyPropagation", "AdjacencyTensor", "MLP"]
from .attentive_edge_pooling import AttentiveEdgePooling, pair_products, upper_pairs  # noqa: E402
from .field_aspect import FieldAspect  # noqa: E402
from .interaction_sampling import InteractionSampling  # noqa: E402

__all__ += ["AttentiveEdgePooling", "pair_products", "upper_pairs", "FieldAspect", "InteractionSampling"]
from .init import init_dense, init_embeddings  # noqa: E402

__all__ += ["init_embeddings", "init_dense"]
from .gates import DimensionGate, InteractionGate  # noqa: E402
from .hyperedge_interaction import FUNCTIONS as INTERACTION_FUNCTIONS, HyperedgeInteraction, as_hyperedges  # noqa: E402

__all__ += ["DimensionGate", "InteractionGate", "HyperedgeInteraction", "INTERACTION_FUNCTIONS", "as_hyperedges"]
