r"""The λ regularisers of FuxiCTR-style runs, as penalties added to the training loss.

* ``embedding_regularizer`` λ: :math:`\tfrac{\lambda}{2}\lVert \mathbf W\rVert^2` over the embedding tables
  (the ``nn.Embedding`` weights of every :class:`~fgraph.nn.FieldEmbedding`, first-order weights included),
  in one of two forms:

  - ``"table"``: over every row of every table (FuxiCTR's form). Its gradient is :math:`\lambda \mathbf W`,
    so with plain SGD or Adam it is the coupled weight decay ``embedding_weight_decay=λ``.
  - ``"rows"``: over the distinct rows the batch looks up (a lazy penalty: a row absent from the batch is not
    shrunk).

* ``net_regularizer`` λ: :math:`\tfrac{\lambda}{2}\lVert\theta\rVert^2` over every other parameter that a
  training optimiser steps: dense weights, biases, GRU cells, normalisation scales, the projections of
  mixed-dimension embeddings; as FuxiCTR's ``regularization_loss`` takes every parameter outside its feature
  embedding. Parameters stepped on validation batches (FIVES's adjacency) are not covered.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

from ..data.loader import TabularBatch
from ..data.space import PAD
from ..nn.embedding import FieldEmbedding
from ..nn.init import field_embeddings

FORMS = ("table", "rows")


def looked_up_rows(embedding: FieldEmbedding, batch: TabularBatch) -> list[Tensor]:
    """The distinct rows of each of ``embedding``'s tables that ``batch`` looks up, one sorted ``int64``
    tensor per table (``embedding.tables[g]``).

    The rows are the table offsets plus the batch's ids, as :meth:`FieldEmbedding.forward` computes them,
    with no lookup: the ids of single-valued fields, and, for multi-valued fields, their bag tokens other
    than the padding ``-1`` (when the batch has bags; otherwise the ids at those positions, as the forward
    pass then uses).
    """
    ids, bags = batch.ids, batch.bags
    use_bags = bags is not None and embedding.bag_positions.numel() > 0
    out = []
    for g in range(len(embedding.group_sizes)):
        positions, offsets = getattr(embedding, f"positions_{g}"), getattr(embedding, f"offsets_{g}")
        parts = []
        if use_bags:
            single = ~torch.isin(positions, embedding.bag_positions)
            if bool(single.any()):
                parts.append((ids[:, positions[single]] + offsets[single]).reshape(-1))
            in_group = torch.isin(embedding.bag_positions, positions)
            if bool(in_group.any()):
                tokens = bags[:, in_group]                                     # (B, nb, L)
                where = torch.searchsorted(positions, embedding.bag_positions[in_group])
                rows = tokens + offsets[where].view(1, -1, 1)
                parts.append(rows[tokens != PAD])
        else:
            parts.append((ids[:, positions] + offsets).reshape(-1))
        rows = torch.cat(parts) if parts else ids.new_zeros(0)
        out.append(torch.unique(rows))
    return out


class Regularizer:
    """The penalty of a run: built once from the model and the parameters its training optimisers step.

    Args:
        model: the model.
        trained: the parameters the training optimisers step (the penalty covers no other).
        embedding: λ of the embedding tables.
        net: λ of every other trained parameter.
        form: ``"table"`` or ``"rows"`` (the embedding penalty's form; the net penalty is always over the
            whole parameter).
    """

    def __init__(self, model: nn.Module, trained: Iterable[Tensor], embedding: float = 0.0, net: float = 0.0,
                 form: str = "table"):
        if form not in FORMS:
            raise ValueError(f"regularizer form must be one of {list(FORMS)}, got {form!r}")
        trained_ids = {id(p) for p in trained}
        self.embedding, self.net, self.form = float(embedding), float(net), form
        #: ``(FieldEmbedding, group, weight)`` of every trained table, each once
        self.tables: list[tuple[FieldEmbedding, int, Tensor]] = []
        seen = set()
        for emb in field_embeddings(model):
            for g, table in enumerate(emb.tables):
                w = table.weight
                if id(w) in trained_ids and id(w) not in seen:
                    seen.add(id(w))
                    self.tables.append((emb, g, w))
        table_ids = {id(p) for m in field_embeddings(model) for t in m.tables for p in t.parameters()}
        seen = set()
        self.net_parameters: list[Tensor] = []
        for p in model.parameters():
            if id(p) in trained_ids and id(p) not in table_ids and id(p) not in seen:
                seen.add(id(p))
                self.net_parameters.append(p)

    @property
    def active(self) -> bool:
        return self.embedding > 0 or self.net > 0

    def embedding_penalty(self, batch: TabularBatch | None = None) -> Tensor | None:
        r""":math:`\tfrac{\lambda}{2}\sum \lVert w\rVert^2` over the tables (``"table"``) or over the rows of
        ``batch`` (``"rows"``); ``None`` when λ is 0."""
        if not self.embedding or not self.tables:
            return None
        if self.form == "table":
            total = sum(w.pow(2).sum() for _, _, w in self.tables)
        else:
            if batch is None:
                raise ValueError("the 'rows' form of the embedding penalty needs the batch")
            total, rows_of = 0.0, {}
            for emb, g, w in self.tables:
                if id(emb) not in rows_of:
                    rows_of[id(emb)] = looked_up_rows(emb, batch)
                total = total + w.index_select(0, rows_of[id(emb)][g]).pow(2).sum()
        return 0.5 * self.embedding * total

    def net_penalty(self) -> Tensor | None:
        r""":math:`\tfrac{\lambda}{2}\sum \lVert\theta\rVert^2` over the other trained parameters; ``None`` when
        λ is 0."""
        if not self.net or not self.net_parameters:
            return None
        return 0.5 * self.net * sum(p.pow(2).sum() for p in self.net_parameters)

    def __call__(self, batch: TabularBatch | None = None) -> Tensor | None:
        """The whole penalty of a training step (``None`` when there is none)."""
        parts = [p for p in (self.embedding_penalty(batch), self.net_penalty()) if p is not None]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]


__all__ = ["Regularizer", "looked_up_rows", "FORMS"]
