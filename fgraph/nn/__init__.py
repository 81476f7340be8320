"""Layers: field embeddings, the FM term, message-passing operators with a field-graph fast path, readout."""
from .edge_scorer import EdgeScorer
from .embedding import FieldEmbedding
from .fm import FMInteraction
from .interaction_attention import InteractionAttention
from .linear import FieldLinear
from .message_passing import FieldMessagePassing, edge_softmax
from .readout import FieldReadout
from .topk_edges import TopKEdges, topk_per_target

__all__ = ["FieldEmbedding", "FieldLinear", "FMInteraction", "FieldMessagePassing", "edge_softmax", "EdgeScorer",
           "TopKEdges", "topk_per_target", "InteractionAttention", "FieldReadout"]
