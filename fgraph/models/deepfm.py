"""DeepFM (Guo et al., IJCAI'17), and the base it shares with IPNN: field embeddings and an MLP on them."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..data.loader import TabularBatch
from ..data.space import FeatureSpace
from ..nn.embedding import FieldEmbedding
from ..nn.fm import FMInteraction
from ..nn.linear import FieldLinear
from ..nn.mlp import MLP
from .base import CTRModel, extends, register_model


class EmbeddingMLPModel(CTRModel):
    r"""What DeepFM and IPNN share (and what AIM wraps): one :class:`~fgraph.nn.FieldEmbedding` table
    :math:`\mathbf{E} = [\mathbf{e}_1, \dots, \mathbf{e}_n]` and an :class:`~fgraph.nn.MLP` whose input is
    :math:`\mathbf{E}` flattened, followed by whatever the subclass adds (:meth:`mlp_extra_width` inputs; IPNN's
    inner products). How the MLP's output becomes the logit is the subclass's :meth:`forward`.

    Args:
        space: the encoder's feature space.
        embed_dim: embedding size ``d``.
        mlp_dims: hidden layer sizes of the MLP.
        mlp_dropout: dropout after each hidden layer.
        mlp_batch_norm: batch normalisation after each hidden linear map (before the ReLU).
        field_dims: optional per-field embedding sizes (see :class:`~fgraph.nn.FieldEmbedding`); every field
            is still projected or placed to ``d``, so the MLP's input width is ``n d`` whatever they are.
    """

    #: ``fgraph tune``'s search (with its shared learning rate and embedding regulariser; see CTRModel)
    search_space = {
        "model.embed_dim": ("categorical", [8, 10, 16, 32, 64]),
        "model.mlp_dims": ("categorical", [[400, 400, 400], [200, 200, 200], [256, 128]]),
        "model.mlp_dropout": ("float", 0.0, 0.5),
        "model.mlp_batch_norm": ("categorical", [False, True]),
    }

    def __init__(self, space: FeatureSpace, embed_dim: int = 10, mlp_dims: Sequence[int] = (400, 400, 400),
                 mlp_dropout: float = 0.0, mlp_batch_norm: bool = False, field_dims: dict | None = None):
        super().__init__(space)
        self.embedding = FieldEmbedding(space, embed_dim, field_dims)
        width = space.num_fields * self.embedding.dim + self.mlp_extra_width()
        self.mlp = MLP(width, mlp_dims, mlp_dropout, mlp_batch_norm)

    def mlp_extra_width(self) -> int:
        """How many inputs the MLP takes after the flattened embeddings (none here). Called during
        construction, once :attr:`space` is set: a subclass computes it from the space."""
        return 0

    def deep(self, e: Tensor, *extra: Tensor) -> Tensor:
        r""":math:`\mathrm{MLP}([\mathbf{e}_1 : \dots : \mathbf{e}_n : \text{extra}])`, ``(B,)``, from the
        embeddings ``e`` ``(B, n, d)`` and the ``(B, k)`` tensors ``extra`` (:meth:`mlp_extra_width` columns
        in all)."""
        return self.mlp(torch.cat([e.flatten(1), *extra], dim=1)).squeeze(-1)


@register_model("deepfm")
class DeepFM(EmbeddingMLPModel):
    r"""DeepFM: an FM and an MLP on the same embeddings, in parallel (AIM paper, Eq. 9):

    .. math::
        \hat y = \underbrace{w_0 + \sum_f w_{x_f} + \sum_{i<j} \langle \mathbf{e}_i, \mathbf{e}_j \rangle}_{l_{FM}
        \text{ (Eq. 4)}} + \mathrm{MLP}([\mathbf{e}_1 : \dots : \mathbf{e}_n])

    with one embedding table for both parts (:class:`~fgraph.nn.FieldLinear`, :class:`~fgraph.nn.FMInteraction`
    and the :class:`EmbeddingMLPModel` MLP), as in FuxiCTR's ``DeepFM``.

    The defaults are the BARS Frappe_x1 run of FuxiCTR's DeepFM (``DeepFM_frappe_x1_001_4ae3a56e``, test AUC
    0.9842): embedding 10, hidden units 400-400-400, ``net_dropout`` 0.2, ``batch_norm`` True (its learning rate
    1e-3 and batch 4096 are training options, ``--protocol bars``; its embedding regulariser 0.05 is
    ``--embedding-regularizer 0.05``).

    Args: those of :class:`EmbeddingMLPModel` (``mlp_dropout`` defaults to 0.2, ``mlp_batch_norm`` to True).
    """

    @extends(EmbeddingMLPModel.__init__, mlp_dropout=0.2, mlp_batch_norm=True)
    def __init__(self, space, **options):
        super().__init__(space, **options)
        self.linear = FieldLinear(space)
        self.interaction = FMInteraction()

    def forward(self, batch: TabularBatch) -> Tensor:
        e = self.embedding(batch)
        return self.linear(batch) + self.interaction(e) + self.deep(e)
