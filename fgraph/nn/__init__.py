"""Layers: field embeddings, the FM term, and message-passing operators with a field-graph fast path."""
from .embedding import FieldEmbedding
from .fm import FMInteraction
from .linear import FieldLinear
from .message_passing import FieldMessagePassing, edge_softmax

__all__ = ["FieldEmbedding", "FieldLinear", "FMInteraction", "FieldMessagePassing", "edge_softmax"]
