"""The interaction-aware FM family (Hong et al., AAAI'19): IFM, INN and DeepIFM."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from ..data.loader import TabularBatch
from ..errors import ConfigError
from ..nn.field_aspect import FieldAspect
from ..nn.interaction_sampling import InteractionSampling
from ..nn.mlp import MLP
from .afm import AttentivePairModel
from .base import extends, register_model

PAIR_REDUCTIONS = ("concat", "sum")
#: the ``aspect_init`` values of :class:`IFM`
ASPECT_INITS = (None, "ones", "fm")


@register_model("ifm")
class IFM(AttentivePairModel):
    r"""Interaction-aware factorisation machine (Eq. 9):

    .. math::
        \hat y = w_0 + \sum_i w_i + \sum_{i<j} T_{ij}\, \langle \mathbf{f}_{ij}, \mathbf{v}_i \odot \mathbf{v}_j \rangle

    with the feature aspect :math:`T_{ij}` (attention over the pairs with temperature :math:`\tau`, Eq. 5; an
    :class:`~fgraph.nn.AttentiveEdgePooling`) and the field aspect :math:`\mathbf{f}_{ij} = \mathbf{D}^\top
    (\mathbf{U}_{f_i} \odot \mathbf{U}_{f_j})` (Eq. 6; a :class:`~fgraph.nn.FieldAspect`). With ``sample_pairs``
    only ``c`` pairs, drawn by :math:`\lVert \mathbf{f}_{ij} \rVert^2` (an :class:`~fgraph.nn.InteractionSampling`),
    are attended to and summed: Gumbel-top-k in training, top-k in evaluation.

    INN and DeepIFM are this model with another function :math:`G` of the same interaction terms (Eq. 12).

    Leave ``attention_l2`` unset unless the validation split asks for it. With :math:`\tau = 10` dividing
    :math:`\mathbf{W}(\mathbf{v}_i \odot \mathbf{v}_j)`, the data's gradient on :math:`\mathbf{W}` is a tenth of
    AFM's, and AFM's L2 then wins. On Frappe's regression protocol (embedding 256, attention 8, pair dropout
    0.1, Adagrad, seed 0) the validation RMSE after two epochs was 0.3353 with ``attention_l2=0.0156`` and
    0.3118 without; without it the run ended at 0.3044, and its test RMSE is 0.3088 ± 0.0025 over three seeds
    (``benchmarks/README.md``).

    Args (besides those of :class:`~fgraph.models.afm.AttentivePairModel`; ``temperature`` defaults to the
    paper's 10):
        field_factors: :math:`K_F` (26 for Frappe at ``K = 256`` in the paper).
        factorise: False for the unfactorised field aspect (IFM⁻, a free vector per field pair).
        field_l2: weight decay on the field aspect's parameters only (the paper's :math:`\lambda_F`).
        sample_pairs: ``c`` pairs kept per batch (an int, or a fraction of the pairs as a float); None keeps all.
        aspect_init: where the pair term starts. ``None`` or ``"ones"``: :math:`\mathbf{f}_{ij} \approx \mathbf{1}`
            (see :class:`~fgraph.nn.FieldAspect`), so that with the near-uniform attention of :math:`\tau = 10`
            the pair term starts at about :math:`1/P` of the FM's. ``"fm"``: :math:`\mathbf{f}_{ij} \approx
            P\,\mathbf{1}` and the attention's :math:`\mathbf{h} = 0` (uniform :math:`T_{ij} = 1/P`), so that
            an IFM pre-trained from an FM starts as that FM, as AFM's ``projection_init="fm"`` does; a
            protocol's dense init then leaves :math:`\mathbf{h}`. fgraph's option, not the paper's.
    """

    #: ``fgraph tune``'s search (with its shared learning rate and embedding regulariser; see CTRModel)
    search_space = {
        "model.embed_dim": ("categorical", [8, 10, 16, 32, 64]),
        "model.attention_dim": ("categorical", [16, 32, 64, 128, 256]),
        "model.dropout": ("float", 0.0, 0.5),
        "model.temperature": ("log_float", 1.0, 20.0),
        "model.field_factors": ("categorical", [4, 8, 16, 26, 32]),
        "model.field_l2": ("categorical", [None, 1e-6, 1e-5, 1e-4, 1e-3]),
    }

    @extends(AttentivePairModel.__init__, temperature=10.0)
    def __init__(self, space, *, field_factors: int = 8, factorise: bool = True, field_l2: float | None = None,
                 sample_pairs: int | float | None = None, aspect_init: str | None = None, **options):
        super().__init__(space, **options)
        if aspect_init not in ASPECT_INITS:
            raise ConfigError(f"{type(self).__name__}'s aspect_init must be one of {list(ASPECT_INITS)}, got "
                              f"{aspect_init!r}")
        self.field_l2 = field_l2
        scale = float(self.pairs.size(1)) if aspect_init == "fm" else 1.0
        self.field_aspect = FieldAspect(space.num_fields, self.embedding.dim, field_factors if factorise else None,
                                        init_scale=scale)
        if aspect_init == "fm":
            nn.init.zeros_(self.pooling.att.weight)              # h = 0: uniform T_ij = 1/P
            self.keep_weights(self.pooling.att)
        self.sampler = None if sample_pairs is None else InteractionSampling(sample_pairs)

    def interactions(self, e: Tensor, reduce: bool = True) -> tuple[Tensor, Tensor, Tensor | None]:
        r"""The terms :math:`T_{ij}\, \mathbf{f}_{ij} \odot \mathbf{v}_i \odot \mathbf{v}_j` of the pairs used,
        summed over the pairs ``(B, K)`` or, with ``reduce=False``, one per pair ``(B, c, K)``; their weights
        :math:`T_{ij}` ``(B, c)``; and their positions among :attr:`pairs` (None: all of them)."""
        pairs, f, kept = self.pairs, self.field_aspect(self.pairs), None
        if self.sampler is not None:
            kept = self.sampler(f.pow(2).sum(-1))
            pairs, f = pairs[:, kept], f[kept]
        terms, (_, weights) = self.pooling(e, pairs, pair_scale=f, reduce=reduce, return_attention_weights=True)
        return terms, weights, kept

    def forward(self, batch: TabularBatch) -> Tensor:
        pooled, _, _ = self.interactions(self.embedding(batch))
        return self.linear(batch) + pooled.sum(-1)

    def pair_attention(self, batch: TabularBatch) -> tuple[Tensor | None, Tensor]:
        _, weights, kept = self.interactions(self.embedding(batch))
        return kept, weights

    def pair_attributes(self) -> dict[str, Tensor]:
        return {"field_norm": self.field_aspect(self.pairs).norm(dim=-1)}

    def regularised_parameters(self):
        return {**super().regularised_parameters(), "field_aspect": (list(self.field_aspect.parameters()), self.field_l2)}


@register_model("inn")
class INN(IFM):
    r"""Interaction-aware neural network (Eq. 14–15): an MLP on the interaction terms,

    .. math::
        \hat y = w_0 + \sum_i w_i + \mathrm{MLP}\big(\Vert_{i<j}\ T_{ij}\, \mathbf{f}_{ij} \odot
        \mathbf{v}_i \odot \mathbf{v}_j\big)

    ReLU hidden layers, identity output. ``pair_reduce="sum"`` feeds the sum over pairs (a ``K``-vector) instead
    of the concatenation (``P K``); the paper's parameter counts (INN no larger than IFM) suggest that is what
    its experiments ran, Eq. 14 says concatenation (the default). With sampling, the concatenation keeps a slot
    per pair, zero for pairs not drawn.

    Args (besides IFM's):
        mlp_dims: hidden layer sizes.
        mlp_dropout: dropout after each hidden layer.
        pair_reduce: ``"concat"`` (Eq. 14) or ``"sum"``.
    """

    #: IFM's search and the MLP's
    search_space = {**IFM.search_space,
                    "model.mlp_dims": ("categorical", [[64], [128], [64, 64]]),
                    "model.mlp_dropout": ("float", 0.0, 0.5)}

    @extends(IFM.__init__)
    def __init__(self, space, *, mlp_dims: Sequence[int] = (64,), mlp_dropout: float = 0.0,
                 pair_reduce: str = "concat", **options):
        super().__init__(space, **options)
        if pair_reduce not in PAIR_REDUCTIONS:
            raise ValueError(f"pair_reduce must be one of {PAIR_REDUCTIONS}, got {pair_reduce!r}")
        self.pair_reduce = pair_reduce
        width = self.embedding.dim * (self.pairs.size(1) if pair_reduce == "concat" else 1)
        self.mlp = MLP(width, mlp_dims, mlp_dropout)

    def forward(self, batch: TabularBatch) -> Tensor:
        concat = self.pair_reduce == "concat"
        h0, _, kept = self.interactions(self.embedding(batch), reduce=not concat)   # (B, c, K) or (B, K)
        if concat:
            if kept is not None:
                h0 = h0.new_zeros(h0.size(0), self.pairs.size(1), h0.size(2)).index_copy(1, kept, h0)
            h0 = h0.flatten(1)
        return self.linear(batch) + self.mlp(h0).squeeze(-1)


@register_model("deepifm")
class DeepIFM(IFM):
    r"""DeepIFM: DeepFM with its FM part replaced by IFM's interaction term,

    .. math::
        \hat y = w_0 + \sum_i w_i + \sum_{i<j} T_{ij} \langle \mathbf{f}_{ij}, \mathbf{v}_i \odot \mathbf{v}_j
        \rangle + \mathrm{MLP}([\mathbf{v}_1 : \dots : \mathbf{v}_n])

    sharing the embeddings. As in the paper's advertising experiment, the attention uses tanh and only pairs
    of different input columns interact (``cross_field_only``; with one node per column that is every pair).

    Args (besides IFM's; ``activation`` defaults to ``"tanh"``, ``cross_field_only`` to True):
        mlp_dims: hidden layer sizes of the deep part (DeepFM's 200-200-200).
        mlp_dropout: dropout after each hidden layer.
    """

    #: IFM's search and the deep part's
    search_space = {**IFM.search_space,
                    "model.mlp_dims": ("categorical", [[200, 200, 200], [400, 400, 400], [256, 128]]),
                    "model.mlp_dropout": ("float", 0.0, 0.5)}

    @extends(IFM.__init__, activation="tanh", cross_field_only=True)
    def __init__(self, space, *, mlp_dims: Sequence[int] = (200, 200, 200), mlp_dropout: float = 0.0, **options):
        super().__init__(space, **options)
        self.mlp = MLP(space.num_fields * self.embedding.dim, mlp_dims, mlp_dropout)

    def forward(self, batch: TabularBatch) -> Tensor:
        e = self.embedding(batch)
        pooled, _, _ = self.interactions(e)
        return self.linear(batch) + pooled.sum(-1) + self.mlp(e.flatten(1)).squeeze(-1)
