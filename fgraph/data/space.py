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
            raise KeyError(f"no field named {name!r} (fields: {self.names})") from None

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

    def take(self, index: Tensor) -> "EncodedData":
        """Rows ``index`` as a new EncodedData (a copy)."""
        pick = lambda t: None if t is None else t.index_select(0, index)  # noqa: E731
        return EncodedData(pick(self.ids), pick(self.values), pick(self.bags), pick(self.y), self.space,
                           self.label_name)

    def tensors(self) -> dict[str, Tensor | None]:
        return {"ids": self.ids, "values": self.values, "bags": self.bags, "y": self.y}


def as_long(t: Tensor) -> Tensor:
    return t if t.dtype == torch.long else t.long()
