"""IPNN: the inner-product neural network of Qu et al. (ICDM'16), as FuxiCTR and the AIM paper run it."""
from __future__ import annotations

from torch import Tensor

from ..data.loader import TabularBatch
from ..nn.attentive_edge_pooling import upper_pairs
from ..nn.hyperedge_interaction import HyperedgeInteraction
from .base import extends, register_model
from .deepfm import EmbeddingMLPModel


@register_model("ipnn")
class IPNN(EmbeddingMLPModel):
    r"""IPNN: an MLP on the product layer, the embeddings and all their pairwise inner products (AIM paper,
    Eq. 10):

    .. math::
        \hat y = \mathrm{MLP}\big([\mathbf{e}_1 : \dots : \mathbf{e}_n : \langle \mathbf{e}_1, \mathbf{e}_2 \rangle
        : \langle \mathbf{e}_1, \mathbf{e}_3 \rangle : \dots : \langle \mathbf{e}_{n-1}, \mathbf{e}_n \rangle]\big)

    the ``n(n-1)/2`` products in the order of :func:`~fgraph.nn.upper_pairs`, computed by a
    :class:`~fgraph.nn.HyperedgeInteraction` (``"inner"`` on every pair: :attr:`products`). As in FuxiCTR's
    ``PNN`` (``product_type="inner"``) there is no first-order term and no bias outside the MLP.

    The defaults are the BARS Frappe_x1 run of FuxiCTR's PNN (``PNN_frappe_x1_020``, test AUC 0.9841):
    embedding 10, hidden units 400-400-400, ``net_dropout`` 0.3, ``batch_norm`` False.

    Args: those of :class:`~fgraph.models.deepfm.EmbeddingMLPModel` (``mlp_dropout`` defaults to 0.3).
    """

    @extends(EmbeddingMLPModel.__init__, mlp_dropout=0.3)
    def __init__(self, space, **options):
        super().__init__(space, **options)
        n = space.num_fields
        self.products = HyperedgeInteraction(upper_pairs(n).t(), "inner", self.embedding.dim)

    def mlp_extra_width(self) -> int:
        n = self.space.num_fields
        return n * (n - 1) // 2

    def forward(self, batch: TabularBatch) -> Tensor:
        e = self.embedding(batch)
        return self.deep(e, self.products(e))
