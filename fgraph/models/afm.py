"""AFM: attentional factorisation machine (Xiao et al., IJCAI'17), and the base of the attentive-pair family."""
from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from ..data.loader import TabularBatch
from ..data.space import FeatureSpace
from ..errors import ConfigError
from ..nn.attentive_edge_pooling import AttentiveEdgePooling, upper_pairs
from ..nn.embedding import FieldEmbedding
from ..nn.linear import FieldLinear
from .base import CTRModel, register_model
from .fm import FM


class AttentivePairModel(CTRModel):
    r"""What AFM and the IFM family share: a first-order term, field embeddings and an
    :class:`~fgraph.nn.AttentiveEdgePooling` over the pairs of fields; how the pooled pairs become a
    prediction is the subclass's :meth:`forward`.

    Also shared: L2 on the attention network's :math:`\mathbf{W}` alone (a parameter group), pre-training
    (:meth:`load_fm`) and the protocol that tells what the model learned, :meth:`pair_weights`: the pairs
    :attr:`pairs` and, per row, the weight each pair gets, plus the attributes a model has per pair whatever
    the row (IFM's field aspect norm). :func:`fgraph.explain.pair_graph` draws them as networkx graphs.

    Args:
        space: the encoder's feature space.
        embed_dim: embedding size ``K``.
        attention_dim: hidden size of the attention network (default ``embed_dim``, the AFM paper's setting).
        dropout: dropout on the pair-wise interaction layer.
        attention_l2: weight decay on the attention network's :math:`\mathbf{W}` only; ``None`` leaves
            :math:`\mathbf{W}` with the other dense weights (the trainer's ``weight_decay``).
        pretrained: a trained :class:`~fgraph.models.FM` whose embeddings and first-order weights initialise
            this model (see :meth:`load_fm`), or a function of no arguments that returns one, called at this
            point of the construction. A model reads no files: an FM run directory is read one level up
            (``fgraph train --model-option pretrained=RUN_DIR`` and :func:`fgraph.api.train` take one, and hand
            the model such a function).
        temperature, temperature_mode, activation: of the attention network (see
            :class:`~fgraph.nn.AttentiveEdgePooling`).
        cross_field_only: pair only nodes that come from different input columns (a bucketised column gives
            several nodes; DeepIFM discards interactions within a field).

    Shapes:
        - **pairs:** ``(2, P)``, the pairs ``i < j`` of field positions the model pools over
        - **pair_weights(batch):** ``{"pairs": (2, P), "weight": (B, P), <attribute>: (P,), ...}``
    """

    def __init__(self, space: FeatureSpace, embed_dim: int = 10, attention_dim: int | None = None,
                 dropout: float = 0.0, attention_l2: float | None = None, pretrained=None, temperature: float = 1.0,
                 temperature_mode: str = "input", activation: str = "relu", cross_field_only: bool = False):
        super().__init__(space)
        n = space.num_fields
        if n < 2:
            raise ValueError(f"{type(self).__name__} models pairs of fields and needs at least 2, got {space.names}")
        pairs = upper_pairs(n)
        if cross_field_only:
            src = space.sources
            pairs = pairs[:, torch.tensor([src[i] != src[j] for i, j in pairs.t().tolist()], dtype=torch.bool)]
            if pairs.size(1) == 0:
                raise ValueError(f"cross_field_only leaves no pairs: every node comes from one column {src[0]!r}")
        self.register_buffer("pairs", pairs.clone(), persistent=False)
        self.attention_l2 = attention_l2
        self.linear = FieldLinear(space)
        self.embedding = FieldEmbedding(space, embed_dim)
        self.pooling = AttentiveEdgePooling(embed_dim, attention_dim or embed_dim, temperature, temperature_mode,
                                            activation, dropout)
        if pretrained is not None:
            # An nn.Module is callable too: only a plain function is a source to call.
            source = pretrained() if callable(pretrained) and not isinstance(pretrained, nn.Module) else pretrained
            self.load_fm(source)

    @property
    def hparams(self) -> dict:
        # The pre-trained weights live in the state dict: rebuilding from a checkpoint must not read the FM again.
        return {**super().hparams, "pretrained": None}

    # -- what subclasses provide --------------------------------------------------------------------------------
    def pair_attention(self, batch: TabularBatch) -> tuple[Tensor | None, Tensor]:
        """``(kept, weights)``: the positions among :attr:`pairs` of the pairs used for ``batch`` (``None``: all of
        them) and their attention weights ``(B, c)``."""
        raise NotImplementedError

    def pair_attributes(self) -> dict[str, Tensor]:
        """Instance-independent pair attributes ``(P,)`` that :meth:`pair_weights` adds (none by default)."""
        return {}

    def regularised_parameters(self) -> dict[str, tuple[list[nn.Parameter], float | None]]:
        """Parameters with a weight decay of their own: ``{group name: (parameters, decay or None)}``."""
        return {"attention_W": ([self.pooling.lin.weight], self.attention_l2)}

    # -- optimisation ---------------------------------------------------------------------------------------------
    def parameter_groups(self) -> list[dict]:
        """:meth:`CTRModel.parameter_groups`, with each of :meth:`regularised_parameters` whose decay is set
        in a group of its own, at that decay."""
        own = [(name, params, decay) for name, (params, decay) in self.regularised_parameters().items()
               if decay is not None]
        taken = {id(p) for _, params, _ in own for p in params}
        groups = [{**g, "params": [p for p in g["params"] if id(p) not in taken]} for g in super().parameter_groups()]
        return [g for g in groups if g["params"]] + \
            [{"params": params, "weight_decay": decay, "name": name} for name, params, decay in own]

    # -- pre-training ------------------------------------------------------------------------------------------------
    def load_fm(self, fm: FM) -> None:
        """Initialise the embeddings and the first-order weights from a trained FM (the papers' "pre-training").

        ``fm`` is an :class:`~fgraph.models.FM` object; its feature space must be this model's (same data set
        and encoder options) and its ``embed_dim`` this model's. A model never reads files: to start from an
        FM run directory, load it first (``fgraph.api.load_run(RUN_DIR)[0]``), or give the directory as the
        ``pretrained`` model option of :func:`fgraph.api.train` / ``fgraph train``, which loads it.

        Raises:
            ConfigError: ``fm`` is a path (see above), or its feature space is not this model's.
            TypeError: ``fm`` is not an FM.
            ValueError: its embedding size differs.
        """
        if isinstance(fm, (str, os.PathLike)):
            raise ConfigError(f"{type(self).__name__} pre-trains from a trained FM object, not from the path "
                              f"{str(fm)!r}: load the run first (fgraph.api.load_run({str(fm)!r})[0]), or give the "
                              f"run directory as the model option pretrained= of fgraph.api.train / fgraph train")
        if not isinstance(fm, FM):
            raise TypeError(f"pre-training needs a trained FM, got {type(fm).__name__}")
        diff = fm.space.describe_difference(self.space)
        if diff:
            raise ConfigError(f"the pre-trained FM was trained on a different schema than this "
                              f"{type(self).__name__}'s: {diff}")
        if fm.embedding.dim != self.embedding.dim or fm.embedding.field_dims:
            raise ValueError(f"the pre-trained FM has embed_dim={fm.embedding.dim} "
                             f"(field_dims={fm.embedding.field_dims or None}); this model needs "
                             f"embed_dim={self.embedding.dim} for every field")
        self.embedding.load_state_dict(fm.embedding.state_dict())
        self.linear.load_state_dict(fm.linear.state_dict())
        self.keep_weights(self.embedding, self.linear)   # a protocol's init must not re-draw them

    # -- what the model learned --------------------------------------------------------------------------------
    def _dense_attention(self, batch: TabularBatch) -> Tensor:
        """``(B, P)`` attention weight of every pair of :attr:`pairs` in the current mode (0 for pairs not
        sampled)."""
        kept, alpha = self.pair_attention(batch)
        if kept is None:
            return alpha
        return alpha.new_zeros(alpha.size(0), self.pairs.size(1)).index_copy_(1, kept, alpha)

    @torch.no_grad()
    def pair_weights(self, batch: TabularBatch | None = None) -> dict[str, Tensor]:
        r"""What the model weighs each pair of fields with, in evaluation mode, without gradients.

        Returns a dict of tensors:

        * ``pairs``: ``(2, P)``, the field positions ``(i, j)``, ``i < j``, of every pair (:attr:`pairs`);
        * ``weight`` (only with a ``batch``): ``(B, P)``, each row's attention weight of every pair (AFM's
          :math:`a_{ij}`, the IFM family's :math:`T_{ij}`); a row's weights sum to 1, and a pair that
          sampling left out weighs 0;
        * the model's instance-independent attributes ``(P,)`` (:meth:`pair_attributes`), e.g. IFM's
          ``field_norm`` :math:`\lVert \mathbf{f}_{ij} 
Vert`.

        The model's training mode is restored after.
        """
        with self._evaluating():
            out = {"pairs": self.pairs.clone()}
            if batch is not None:
                out["weight"] = self._dense_attention(batch)
            out.update({k: v.detach() for k, v in self.pair_attributes().items()})
        return out


#: the ``projection_init`` values of :class:`AFM` (``None``: ones, re-drawn by a protocol's dense init)
PROJECTION_INITS = (None, "ones", "fm")


@register_model("afm")
class AFM(AttentivePairModel):
    r"""Attentional factorisation machine (Eq. 6):

    .. math::
        \hat y = w_0 + \sum_i w_i + \mathbf{p}^\top \sum_{i<j} a_{ij} (\mathbf{v}_i \odot \mathbf{v}_j),
        \qquad a_{ij} = \operatorname{softmax}_{(i,j)} \mathbf{h}^\top \mathrm{ReLU}(\mathbf{W}(\mathbf{v}_i \odot
        \mathbf{v}_j) + \mathbf{b})

    :math:`\mathbf{p}` starts at :math:`\mathbf{1}` (the authors' code), which a training protocol's dense
    init re-draws (the ``bars`` protocol: Xavier-normal, as FuxiCTR's AFM) unless ``projection_init`` names
    a start, which is then kept: ``"ones"`` (the authors' :math:`\mathbf{1}`) or ``"fm"``
    (:math:`\mathbf{p} = P\,\mathbf{1}`, :math:`P` the number of pairs, and :math:`\mathbf{h} = 0`, so the
    attention starts uniform, :math:`a_{ij} = 1/P`, and the pair term is exactly the FM's
    :math:`\sum_{i<j} \langle \mathbf{v}_i, \mathbf{v}_j\rangle`: an AFM pre-trained from an FM starts as
    that FM; fgraph's option, not the paper's). ``dropout`` is on the pair-wise interaction layer,
    ``attention_l2`` is the L2 on :math:`\mathbf{W}` (Eq. 8); ``pretrained`` takes a trained FM (``fgraph
    train`` an FM run directory, or ``fm`` to train one first; see :func:`fgraph.api.train`).

    Why ``"fm"``: on Frappe (seed 0, the bars protocol, attention 64, pre-trained from the shipped FM run,
    validation AUC 0.9737) the validation AUC was 0.9654 with the protocol's Xavier :math:`\mathbf{p}`,
    0.9661 with :math:`\mathbf{1}`, 0.9720 with :math:`P\,\mathbf{1}` and a Xavier :math:`\mathbf{h}`,
    0.9734 with ``"fm"`` (dropout 0, lr 1e-3); not pre-trained, 0.9632. With :math:`\mathbf{1}` the pair
    term starts at 1/P of the FM's, the first epochs' validation AUC falls to 0.69-0.90 and the pre-trained
    interactions are not recovered.
    Paper settings: Frappe/MovieLens embedding 256, attention factor 256, dropout 0.2 (Frappe) / 0.5
    (MovieLens), Adagrad, squared loss on ±1 labels (``task="regression"``).
    """

    #: ``fgraph tune``'s search (with its shared learning rate and embedding regulariser; see CTRModel). The
    #: BARS Frappe_x1 run: attention 128, attention dropout 0.1, embedding λ 1e-5.
    search_space = {
        "model.embed_dim": ("categorical", [8, 10, 16, 32, 64]),
        "model.attention_dim": ("categorical", [16, 32, 64, 128, 256]),
        "model.dropout": ("float", 0.0, 0.5),
        "model.attention_l2": ("categorical", [None, 1e-6, 1e-5, 1e-4, 1e-3]),
    }

    def __init__(self, space: FeatureSpace, embed_dim: int = 10, attention_dim: int | None = None,
                 dropout: float = 0.0, attention_l2: float | None = None, pretrained=None,
                 projection_init: str | None = None):
        super().__init__(space, embed_dim, attention_dim, dropout, attention_l2, pretrained)
        self.projection = nn.Linear(embed_dim, 1, bias=False)                 # p
        if projection_init not in PROJECTION_INITS:
            raise ConfigError(f"AFM's projection_init must be one of {list(PROJECTION_INITS)}, got "
                              f"{projection_init!r}")
        nn.init.constant_(self.projection.weight, self.pairs.size(1) if projection_init == "fm" else 1.0)
        if projection_init == "fm":
            nn.init.zeros_(self.pooling.att.weight)              # h = 0: uniform attention a_ij = 1/P
        if projection_init is not None:
            # Chosen on purpose: a protocol's dense init leaves them.
            self.keep_weights(self.projection, *([self.pooling.att] if projection_init == "fm" else []))

    def forward(self, batch: TabularBatch) -> Tensor:
        pooled = self.pooling(self.embedding(batch), self.pairs)
        return self.linear(batch) + self.projection(pooled).squeeze(-1)

    def pair_attention(self, batch: TabularBatch) -> tuple[Tensor | None, Tensor]:
        _, (_, alpha) = self.pooling(self.embedding(batch), self.pairs, return_attention_weights=True)
        return None, alpha
