"""Factorisation machine (Rendle, 2010)."""
from __future__ import annotations

from torch import Tensor

from ..data.loader import TabularBatch
from ..data.space import FeatureSpace
from ..nn.embedding import FieldEmbedding
from ..nn.fm import FMInteraction
from ..nn.linear import FieldLinear
from .base import CTRModel, register_model


@register_model("fm")
class FM(CTRModel):
    r"""Factorisation machine:
    :math:`\hat y = w_0 + \sum_f w_{x_f} + \sum_{i<j} \langle \mathbf{e}_i, \mathbf{e}_j \rangle`.

    Args:
        space: the encoder's feature space.
        embed_dim: embedding size ``d``.
        field_dims: optional per-field embedding sizes (see :class:`~fgraph.nn.FieldEmbedding`).
    """

    #: ``fgraph tune``'s search (with its shared learning rate and embedding regulariser; see CTRModel)
    search_space = {"model.embed_dim": ("categorical", [8, 10, 16, 32, 64])}

    def __init__(self, space: FeatureSpace, embed_dim: int = 10, field_dims: dict | None = None):
        super().__init__(space)
        self.linear = FieldLinear(space)
        self.embedding = FieldEmbedding(space, embed_dim, field_dims)
        self.interaction = FMInteraction()

    def forward(self, batch: TabularBatch) -> Tensor:
        return self.linear(batch) + self.interaction(self.embedding(batch))
