"""AFM: attentional factorisation machine (Xiao et al., IJCAI'17), and the base of the attentive-pair family."""
from __future__ import annotations

import functools
import inspect
import os
from typing import Callable, Iterable

import networkx as nx
import torch
from torch import Tensor, nn

from ..data.loader import TabularBatch
from ..data.space import FeatureSpace
from ..nn.attentive_edge_pooling import AttentiveEdgePooling, upper_pairs
from ..nn.embedding import FieldEmbedding
from ..nn.linear import FieldLinear
from .base import CTRModel, OptimConfig, register_model


def extends(base_init: Callable, **new_defaults) -> Callable:
    """Decorator for a subclass ``__init__(self, space, *, <own options>, **options)`` that hands ``**options``
    to ``base_init``.

    The decorated ``__init__`` gets a signature listing its own options and every option of ``base_init``
    (``new_defaults`` replacing some of their defaults), and is called with all of them, given or defaulted.
    So :func:`~fgraph.models.build_model` checks option names against the full list and checkpoints record
    every value, and the shared options are written once, in the base.
    """
    def wrap(init):
        own = inspect.signature(init)
        own_params = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
        taken = {p.name for p in own_params}
        inherited = [p.replace(kind=p.KEYWORD_ONLY, default=new_defaults.get(p.name, p.default))
                     for p in inspect.signature(base_init).parameters.values()
                     if p.name not in taken and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        unknown = sorted(set(new_defaults) - {p.name for p in inherited})
        if unknown:
            raise TypeError(f"{init.__qualname__}: new defaults for options the base does not take: {unknown}")
        sig = own.replace(parameters=own_params + inherited)

        @functools.wraps(init)
        def wrapper(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            return init(*bound.args, **bound.kwargs)

        wrapper.__signature__ = sig
        return wrapper
    return wrap


def pair_graph(names: list[str], pairs: list[tuple[int, int]], attrs: dict[str, Tensor],
               values: list | None = None) -> nx.Graph:
    """An undirected ``nx.Graph`` over the fields with one edge per pair, carrying ``attrs`` (``(P,)`` each)."""
    g = nx.Graph()
    g.add_nodes_from(names)
    if values is not None:
        nx.set_node_attributes(g, dict(zip(names, values)), "value")
    columns = {k: v.tolist() for k, v in attrs.items()}
    for p, (i, j) in enumerate(pairs):
        g.add_edge(names[i], names[j], **{k: col[p] for k, col in columns.items()})
    return g


class AttentivePairModel(CTRModel):
    r"""What AFM and the IFM family share: a first-order term, field embeddings and an
    :class:`~fgraph.nn.AttentiveEdgePooling` over the pairs of fields; how the pooled pairs become a
    prediction is the subclass's :meth:`forward`.

    Also shared: L2 on the attention network's :math:`\mathbf{W}` alone (a parameter group), pre-training
    (:meth:`load_fm`) and :meth:`interaction_graph`.

    Args:
        space: the encoder's feature space.
        embed_dim: embedding size ``K``.
        attention_dim: hidden size of the attention network (default ``embed_dim``, the AFM paper's setting).
        dropout: dropout on the pair-wise interaction layer.
        attention_l2: weight decay on the attention network's :math:`\mathbf{W}` only; ``None`` leaves
            :math:`\mathbf{W}` with the other dense weights (the trainer's ``weight_decay``).
        pretrained: an FM run directory (or an :class:`~fgraph.models.FM`) whose embeddings and first-order
            weights initialise this model (see :meth:`load_fm`).
        temperature, temperature_mode, activation: of the attention network (see
            :class:`~fgraph.nn.AttentiveEdgePooling`).
        cross_field_only: pair only nodes that come from different input columns (a bucketised column gives
            several nodes; DeepIFM discards interactions within a field).
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
            self.load_fm(pretrained)

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
        """Instance-independent edge attributes ``(P,)`` for :meth:`interaction_graph` (none by default)."""
        return {}

    def regularised_parameters(self) -> dict[str, tuple[list[nn.Parameter], float | None]]:
        """Parameters with a weight decay of their own: ``{group name: (parameters, decay or None)}``."""
        return {"attention_W": ([self.pooling.lin.weight], self.attention_l2)}

    # -- optimisation ---------------------------------------------------------------------------------------------
    def parameter_groups(self, cfg: OptimConfig) -> list[dict]:
        own = [(name, params, decay) for name, (params, decay) in self.regularised_parameters().items()
               if decay is not None]
        taken = {id(p) for _, params, _ in own for p in params}
        groups = [{**g, "params": [p for p in g["params"] if id(p) not in taken]} for g in super().parameter_groups(cfg)]
        return [g for g in groups if g["params"]] + \
            [{"params": params, "weight_decay": decay, "name": name} for name, params, decay in own]

    # -- pre-training ------------------------------------------------------------------------------------------------
    def load_fm(self, source) -> None:
        """Initialise the embeddings and the first-order weights from a trained FM (the papers' "pre-training").

        ``source`` is an FM run directory (``fgraph train --model fm``; its best weights are used) or an
        :class:`~fgraph.models.FM`. Its feature space must be this model's (same data set and encoder
        options) and its ``embed_dim`` this model's.
        """
        from ..train.checkpoint import check_same_space
        from .fm import FM

        if isinstance(source, (str, os.PathLike)):
            from ..api import load_run

            source = load_run(source)[0]
        if not isinstance(source, FM):
            raise TypeError(f"pre-training needs a trained FM (or its run directory), got {type(source).__name__}")
        check_same_space(source.space, self.space, what="pre-trained FM")
        if source.embedding.dim != self.embedding.dim or source.embedding.field_dims:
            raise ValueError(f"the pre-trained FM has embed_dim={source.embedding.dim} "
                             f"(field_dims={source.embedding.field_dims or None}); this model needs "
                             f"embed_dim={self.embedding.dim} for every field")
        self.embedding.load_state_dict(source.embedding.state_dict())
        self.linear.load_state_dict(source.linear.state_dict())

    # -- interpretation -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def attention_matrix(self, batch: TabularBatch) -> Tensor:
        """``(B, P)`` attention weight of every pair of :attr:`pairs` (0 for pairs not sampled)."""
        kept, alpha = self.pair_attention(batch)
        if kept is None:
            return alpha
        return alpha.new_zeros(alpha.size(0), self.pairs.size(1)).index_copy_(1, kept, alpha)

    def interaction_graph(self, batch: TabularBatch | Iterable[TabularBatch] | None = None, encoder=None):
        """The learned interaction graph: an undirected ``nx.Graph`` over the fields, one edge per pair.

        * ``batch`` a :class:`~fgraph.data.TabularBatch`: a list of graphs, one per row. Edge attribute
          ``weight`` is the row's attention weight of the pair (they sum to 1 over a row's edges); nodes carry
          the row's ``value`` (decoded with the fitted ``encoder``, otherwise the id).
        * ``batch`` an iterable of batches (e.g. a :class:`~fgraph.data.FieldLoader`): one graph whose
          ``weight`` is the mean over all rows.
        * ``batch=None``: the instance-independent graph, for models that have one (IFM's field aspect).

        Models may add attributes of their own (IFM: ``field_norm``, :math:`\\lVert \\mathbf{f}_{ij} \\rVert`).
        Computed in evaluation mode.
        """
        names, pairs = self.space.names, [tuple(p) for p in self.pairs.t().tolist()]
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                static = {k: v.detach().cpu() for k, v in self.pair_attributes().items()}
                if batch is None:
                    if not static:
                        raise ValueError(f"{type(self).__name__}'s pair weights depend on the row: pass a batch "
                                         f"or a loader to interaction_graph()")
                    return pair_graph(names, pairs, static)
                if isinstance(batch, TabularBatch):
                    alpha = self.attention_matrix(batch).cpu()
                    ids = batch.ids.cpu().tolist()
                    values = ids if encoder is None else \
                        [[encoder.value_of(name, i) for name, i in zip(names, row)] for row in ids]
                    return [pair_graph(names, pairs, {"weight": alpha[b], **static}, values[b])
                            for b in range(alpha.size(0))]
                total, rows = None, 0
                for part in batch:
                    alpha = self.attention_matrix(part).sum(0).cpu()
                    total = alpha if total is None else total + alpha
                    rows += part.num_rows
                if not rows:
                    raise ValueError("interaction_graph got no batches")
                return pair_graph(names, pairs, {"weight": total / rows, **static})
        finally:
            self.train(was_training)


@register_model("afm")
class AFM(AttentivePairModel):
    r"""Attentional factorisation machine (Eq. 6):

    .. math::
        \hat y = w_0 + \sum_i w_i + \mathbf{p}^\top \sum_{i<j} a_{ij} (\mathbf{v}_i \odot \mathbf{v}_j),
        \qquad a_{ij} = \operatorname{softmax}_{(i,j)} \mathbf{h}^\top \mathrm{ReLU}(\mathbf{W}(\mathbf{v}_i \odot
        \mathbf{v}_j) + \mathbf{b})

    :math:`\mathbf{p}` starts at :math:`\mathbf{1}` (the authors' code). ``dropout`` is on the pair-wise
    interaction layer, ``attention_l2`` is the L2 on :math:`\mathbf{W}` (Eq. 8); ``pretrained`` takes an FM run.
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
                 dropout: float = 0.0, attention_l2: float | None = None, pretrained=None):
        super().__init__(space, embed_dim, attention_dim, dropout, attention_l2, pretrained)
        self.projection = nn.Linear(embed_dim, 1, bias=False)                 # p
        nn.init.ones_(self.projection.weight)

    def forward(self, batch: TabularBatch) -> Tensor:
        pooled = self.pooling(self.embedding(batch), self.pairs)
        return self.linear(batch) + self.projection(pooled).squeeze(-1)

    def pair_attention(self, batch: TabularBatch) -> tuple[Tensor | None, Tensor]:
        _, (_, alpha) = self.pooling(self.embedding(batch), self.pairs, return_attention_weights=True)
        return None, alpha
