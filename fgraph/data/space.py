"""What an encoded table looks like to a model: its nodes (fields), their vocabularies, and the tensors.

A :class:`FeatureSpace` is the contract between the encoder and the models: node ``k`` of every field
graph is ``space.names[k]``, its ids run over ``range(space.cardinalities[k])`` and it is embedded in one
of three ways (``space.kinds[k]``):

* ``"id"`` -- a single id per row;
* ``"scaled"`` -- a numeric field: id 1 for a present value (multiplied by ``values``), id 0 when missing;
* ``"bag"`` -- a multi-valued field: up to ``max_tokens`` ids per row, mean-pooled.

The first ids of every id/bag vocabulary are reserved (see :data:`MISSING`, :data:`UNKNOWN`, :data:`RARE`).
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field

import torch
from torch import Tensor

from ..errors import ColumnNotFoundError, DataError

#: Reserved ids shared by every categorical, bucketised and multi-valued field.
MISSING, UNKNOWN, RARE = 0, 1, 2
NUM_RESERVED = 3
#: Ids of a scaled numeric field.
SCALED_MISSING, SCALED_PRESENT = 0, 1
#: Padding in a bag of tokens.
PAD = -1


@dataclass
class FeatureSpace:
    """The nodes of the field graph and their vocabulary sizes.

    Args:
        names: node names, in node order.
        kinds: ``"id"``, ``"scaled"`` or ``"bag"`` per node.
        cardinalities: vocabulary size per node (reserved ids included).
        sources: the input column each node comes from (a bucketised column gives several nodes).
        max_tokens: for bag nodes, the bag length kept by the encoder.
    """

    names: list[str]
    kinds: list[str]
    cardinalities: list[int]
    sources: list[str]
    max_tokens: dict[str, int] = dc_field(default_factory=dict)

    def __post_init__(self):
        lengths = {len(self.names), len(self.kinds), len(self.cardinalities), len(self.sources)}
        if len(lengths) != 1:
            raise DataError(f"a FeatureSpace needs one name, kind, cardinality and source per node; got "
                            f"{len(self.names)}, {len(self.kinds)}, {len(self.cardinalities)} and "
                            f"{len(self.sources)}")
        bad = [k for k in self.kinds if k not in ("id", "scaled", "bag")]
        if bad:
            raise DataError(f"FeatureSpace kinds must be 'id', 'scaled' or 'bag', got {bad}")
        lacking = [self.names[k] for k, kind in enumerate(self.kinds) if kind == "bag" and self.names[k] not in
                   self.max_tokens]
        if lacking or any(int(c) < 1 for c in self.cardinalities):
            raise DataError(f"FeatureSpace: every cardinality must be >= 1 and every bag node needs its "
                            f"max_tokens (missing for {lacking})")

    @property
    def num_fields(self) -> int:
        return len(self.names)

    @property
    def bag_positions(self) -> list[int]:
        return [k for k, kind in enumerate(self.kinds) if kind == "bag"]

    @property
    def scaled_positions(self) -> list[int]:
        return [k for k, kind in enumerate(self.kinds) if kind == "scaled"]

    @property
    def bag_length(self) -> int:
        return max((self.max_tokens[self.names[k]] for k in self.bag_positions), default=0)

    @property
    def offsets(self) -> list[int]:
        out, total = [], 0
        for c in self.cardinalities:
            out.append(total)
            total += c
        return out

    @property
    def num_ids(self) -> int:
        return int(sum(self.cardinalities))

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ColumnNotFoundError(f"no field named {name!r} (fields: {self.names})") from None

    def to_dict(self) -> dict:
        return {"names": list(self.names), "kinds": list(self.kinds),
                "cardinalities": [int(c) for c in self.cardinalities], "sources": list(self.sources),
                "max_tokens": {k: int(v) for k, v in self.max_tokens.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpace":
        return cls(list(d["names"]), list(d["kinds"]), [int(c) for c in d["cardinalities"]],
                   list(d["sources"]), dict(d.get("max_tokens", {})))

    def describe_difference(self, other: "FeatureSpace") -> str | None:
        """A sentence saying how ``other`` differs from this space, or None if they are the same."""
        if self.names != other.names:
            return f"fields differ: {self.names} vs {other.names}"
        if self.kinds != other.kinds:
            return f"field kinds differ: {self.kinds} vs {other.kinds}"
        bad = [n for n, a, b in zip(self.names, self.cardinalities, other.cardinalities) if a != b]
        if bad:
            return f"vocabulary sizes differ for fields {bad}"
        return None


@dataclass
class EncodedData:
    """An encoded table: every tensor has one row per instance.

    Attributes:
        ids: ``(N, n)`` field-local ids (int32 to keep large tables small; models see int64 batches).
        values: ``(N, n)`` float multipliers, or ``None`` when every field is an id (all ones).
        bags: ``(N, n_bag, L)`` token ids of the multi-valued fields, ``-1`` padded, or ``None``.
        y: ``(N,)`` float labels, or ``None`` for unlabelled data.
        space: the :class:`FeatureSpace` these ids live in.
        label_name: the label column the labels came from (for error messages).
    """

    ids: Tensor
    values: Tensor | None
    bags: Tensor | None
    y: Tensor | None
    space: FeatureSpace
    label_name: str | None = None

    def __len__(self) -> int:
        return self.ids.size(0)

    def __repr__(self) -> str:
        return (f"EncodedData(rows={len(self)}, fields={self.space.num_fields}, "
                f"labelled={self.y is not None})")

    def validate(self) -> "EncodedData":
        """Check that the tensors fit :attr:`space` and each other; return ``self``.

        A model indexes its embedding tables with these ids, so an id outside a field's vocabulary (ids from
        another encoder, or built by hand) would read another field's row or fail deep inside torch. Raises
        :class:`~fgraph.errors.DataError` naming the field, the row and the id, or the tensor whose shape is
        wrong. The cost is one min and one max per column.
        """
        sp = self.space
        ids = self.ids
        if not isinstance(ids, Tensor) or ids.dim() != 2 or ids.size(1) != sp.num_fields:
            shape = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
            raise DataError(f"EncodedData ids must be a (rows, {sp.num_fields}) tensor, one column per field of "
                            f"its space {sp.names}; got {shape}")
        if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
            raise DataError(f"EncodedData ids must be an integer tensor, got {ids.dtype}")
        n = ids.size(0)
        shapes = {"values": (n, sp.num_fields), "y": (n,)}
        if self.bags is not None:
            shapes["bags"] = (n, len(sp.bag_positions), self.bags.size(-1) if self.bags.dim() == 3 else -1)
        elif sp.bag_positions:
            raise DataError(f"EncodedData has multi-valued fields {[sp.names[k] for k in sp.bag_positions]} "
                            f"but no bags")
        for name, shape in shapes.items():
            t = getattr(self, name)
            if t is not None and tuple(t.shape) != shape:
                raise DataError(f"EncodedData {name} has shape {tuple(t.shape)}, expected {shape}: one row per "
                                f"row of ids ({n})")
        if n == 0:
            return self
        for name in ("values", "y"):
            t = getattr(self, name)
            if t is not None and not bool(torch.isfinite(t).all()):
                row = int((~torch.isfinite(t)).nonzero()[0][0])
                raise DataError(f"EncodedData {name} holds a NaN or infinite value at row {row}")
        card = torch.tensor(sp.cardinalities, dtype=torch.long)
        lo, hi = ids.amin(0).long(), ids.amax(0).long()
        bad = ((lo < 0) | (hi >= card)).nonzero()
        if bad.numel():
            k = int(bad[0])
            col = ids[:, k].long()
            row = int(((col < 0) | (col >= card[k])).nonzero()[0])
            raise DataError(f"field {sp.names[k]!r}: id {int(col[row])} at row {row} is outside its vocabulary "
                            f"0..{int(card[k]) - 1}; ids must come from the FieldEncoder the model was built "
                            f"with")
        for slot, k in enumerate(sp.bag_positions):
            b = self.bags[:, slot]
            if int(b.amin()) < PAD or int(b.amax()) >= int(card[k]):  # PAD (-1) and 0..card-1 are valid
                b = b.long()
                row, pos = (int(i) for i in ((b < PAD) | (b >= card[k])).nonzero()[0])
                raise DataError(f"field {sp.names[k]!r}: bag token {int(b[row, pos])} at row {row} is outside its "
                                f"vocabulary 0..{int(card[k]) - 1} (padding is {PAD}); ids must come from the "
                                f"FieldEncoder the model was built with")
        return self

    def take(self, index: Tensor) -> "EncodedData":
        """Rows ``index`` as a new EncodedData (a copy)."""
        pick = lambda t: None if t is None else t.index_select(0, index)  # noqa: E731
        return EncodedData(pick(self.ids), pick(self.values), pick(self.bags), pick(self.y), self.space,
                           self.label_name)

    def tensors(self) -> dict[str, Tensor | None]:
        return {"ids": self.ids, "values": self.values, "bags": self.bags, "y": self.y}

    def batch_tensors(self, rows) -> dict[str, Tensor | None]:
        """The tensors of rows ``rows``: a slice of positions, or a LongTensor of them (what
        :class:`~fgraph.data.FieldLoader` asks for each batch; the out-of-core table overrides it)."""
        if isinstance(rows, slice):
            pick = lambda x: None if x is None else x[rows]  # noqa: E731
        else:
            pick = lambda x: None if x is None else x.index_select(0, rows)  # noqa: E731
        return {name: pick(t) for name, t in self.tensors().items()}


def as_long(t: Tensor) -> Tensor:
    return t if t.dtype == torch.long else t.long()
