"""Factorisation machine (Rendle, 2010)."""
from __future__ import annotations

from torch import Tensor, nn

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
        dropout: dropout on the pair-wise interaction vector
            :math:`\tfrac12[(\sum_i \mathbf{e}_i)^2 - \sum_i \mathbf{e}_i^2] \in \mathbb{R}^d` before it is summed
            over ``d``, as the AFM and IFM papers' FM baselines do ("dropout on the feature interactions"). Each
            kept coordinate is scaled by ``1/(1-p)``, so evaluation needs no change. It stays linear in the
            number of fields. 0 (the default) is Rendle's FM.

    Why a dropout: under the regression protocol of those papers (embedding 256, Adagrad) fgraph's FM without
    it reached a training loss of 0.0004 against a validation RMSE of 0.339, and every model pre-trained
    from it (AFM, IFM, INN) inherits that fit. ``benchmarks/README.md`` gives the measured effect.
    """

    #: ``fgraph tune``'s search (with its shared learning rate and embedding regulariser; see CTRModel)
    search_space = {"model.embed_dim": ("categorical", [8, 10, 16, 32, 64]),
                    "model.dropout": ("float", 0.0, 0.5)}

    def __init__(self, space: FeatureSpace, embed_dim: int = 10, field_dims: dict | None = None,
                 dropout: float = 0.0):
        super().__init__(space)
        self.linear = FieldLinear(space)
        self.embedding = FieldEmbedding(space, embed_dim, field_dims)
        self.interaction = FMInteraction(reduce=False)   # (B, d): the vector the dropout acts on
        self.dropout = nn.Dropout(dropout)                # p = 0 returns its input unchanged

    def forward(self, batch: TabularBatch) -> Tensor:
        return self.linear(batch) + self.dropout(self.interaction(self.embedding(batch))).sum(-1)
