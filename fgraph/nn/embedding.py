r"""Field embeddings: the node features of the field graph."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.loader import TabularBatch
from ..data.space import PAD, UNKNOWN, FeatureSpace


def _lookup(weight: Tensor, ids: Tensor) -> Tensor:
    """Rows ``weight[ids]``, shaped ``(*ids.shape, dim)``.

    On CPU the backward of ``index_select`` (an ``index_add_``) is 3-5x faster than ``embedding``'s, which sorts
    the ids first; for a CTR batch that is a noticeable part of the step. Elsewhere ``embedding`` is kept.
    """
    if weight.device.type == "cpu":
        return weight.index_select(0, ids.reshape(-1)).view(*ids.shape, weight.size(1))
    return F.embedding(ids, weight)


def _field_size(field: str, value, dim: int):
    """A ``field_dims`` value checked: a size >= 1 (an int), or a sorted tuple of distinct coordinates of
    ``0..dim-1`` (the kept dimensions of an embedding-dimension search)."""
    if isinstance(value, bool):
        raise ValueError(f"field_dims[{field!r}] must be a size or a list of coordinates, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"field_dims[{field!r}] must be a size >= 1 (or a list of kept coordinates), "
                             f"got {value}")
        return value
    try:
        coords = [int(c) for c in value]
    except (TypeError, ValueError):
        raise ValueError(f"field_dims[{field!r}] must be a size or a list of coordinates of 0..{dim - 1}, "
                         f"got {value!r}") from None
    if len(set(coords)) != len(coords) or any(not 0 <= c < dim for c in coords):
        raise ValueError(f"field_dims[{field!r}] lists coordinates {coords}; they must be distinct and lie in "
                         f"0..{dim - 1} (the embedding size is {dim})")
    return tuple(sorted(coords))


def _group_key(value, dim: int) -> tuple[int, bool]:
    """(size, placed) of a field: all ``dim`` coordinates kept is the main group."""
    if isinstance(value, int):
        return value, False
    return (dim, False) if len(value) == dim else (len(value), True)


class FieldEmbedding(nn.Module):
    r"""Embeds every field of a batch into a ``(B, n, d)`` tensor.

    .. math::
        \mathbf{e}_f = v_f \, \mathbf{E}[o_f + x_f]

    with one table :math:`\mathbf{E}` for all fields, per-field offsets :math:`o_f`, the field-local id
    :math:`x_f` and the multiplier :math:`v_f` (the scaled value of a numeric field, 1 otherwise). A
    multi-valued field is the mean of its tokens' rows. With ``dim=1`` this is the linear (first-order) term
    of FM-style models.

    Rows of the *unknown* id start at zero: a value never seen in training then contributes nothing, and as
    no training row ever selects them they stay zero.

    Args:
        space: the :class:`~fgraph.data.FeatureSpace` of the encoder.
        dim: embedding size ``d``.
        field_dims: optional ``{field: size}``; those fields get a table of their own size, projected to
            ``d`` by a bias-free linear map (mixed-dimension embeddings). Fields of equal size share a table.
            A value may instead be a list of coordinates of ``0..d-1`` (AIM's embedding-dimension search,
            Eq. 16-18): the field gets a table with one column per listed coordinate, placed at those
            coordinates of the ``d``-vector, the others zero, with no parameters for the placement (an empty
            list: the field's embedding is all zeros). Fields with the same number of kept coordinates share
            a table.
        init_std: standard deviation of the normal initialisation; ``None`` uses Xavier-uniform.

    Shapes:
        - **input:** a :class:`~fgraph.data.TabularBatch` (``ids (B, n)``, ``values (B, n)``,
          ``bags (B, n_bag, L)``)
        - **output:** ``(B, n, d)``
    """

    def __init__(self, space: FeatureSpace, dim: int, field_dims: dict[str, int] | None = None,
                 init_std: float | None = None):
        super().__init__()
        if dim < 1:
            raise ValueError(f"embedding dim must be >= 1, got {dim}")
        field_dims = dict(field_dims or {})
        unknown = [f for f in field_dims if f not in space.names]
        if unknown:
            raise KeyError(f"field_dims names fields that do not exist: {unknown} (fields: {space.names})")
        field_dims = {f: _field_size(f, v, dim) for f, v in field_dims.items()}
        self.space, self.dim, self.field_dims, self.init_std = space, dim, field_dims, init_std
        # A group: (size, placed), placed for fields whose kept coordinates are listed (see field_dims).
        keys = [_group_key(field_dims.get(name, dim), dim) for name in space.names]
        self.group_keys = sorted(set(keys), key=lambda key: (key != (dim, False), key[1], key[0]))
        self.group_sizes = [size for size, _ in self.group_keys]
        self.tables = nn.ModuleList()
        self.projections = nn.ModuleList()
        for g, key in enumerate(self.group_keys):
            size, placed = key
            pos = [k for k, other in enumerate(keys) if other == key]
            cards = torch.tensor([space.cardinalities[k] for k in pos])
            offsets = torch.cat([torch.zeros(1, dtype=torch.long), cards.cumsum(0)[:-1]])
            self.register_buffer(f"positions_{g}", torch.tensor(pos, dtype=torch.long), persistent=False)
            self.register_buffer(f"offsets_{g}", offsets, persistent=False)
            if placed:   # (n_g, size): the coordinates of d each field's columns go to
                coords = [list(field_dims[space.names[k]]) for k in pos]
                self.register_buffer(f"coordinates_{g}", torch.tensor(coords, dtype=torch.long).view(len(pos), size),
                                     persistent=False)
            self.tables.append(nn.Embedding(int(cards.sum()), size))
            self.projections.append(nn.Identity() if size == dim or placed else nn.Linear(size, dim, bias=False))
        bag_pos = space.bag_positions
        self.register_buffer("bag_positions", torch.tensor(bag_pos, dtype=torch.long), persistent=False)
        self.has_values = bool(space.scaled_positions)
        self.reset_parameters()

    @property
    def weight(self) -> Tensor:
        """The table of the main group (all fields, unless ``field_dims`` gives some their own size)."""
        return self.tables[0].weight

    def reset_parameters(self) -> None:
        for g, table in enumerate(self.tables):
            if table.weight.numel() == 0:
                continue
            if self.init_std is None:
                nn.init.xavier_uniform_(table.weight)
            else:
                nn.init.normal_(table.weight, std=self.init_std)
            # Id 1 of a scaled numeric field is its "present" vector, not an unknown value: keep it.
            positions = getattr(self, f"positions_{g}")
            has_unknown = torch.tensor([self.space.kinds[int(k)] != "scaled" for k in positions],
                                       dtype=torch.bool, device=positions.device)
            with torch.no_grad():
                table.weight[getattr(self, f"offsets_{g}")[has_unknown] + UNKNOWN] = 0.0
        for proj in self.projections:
            if isinstance(proj, nn.Linear):
                proj.reset_parameters()

    def _group(self, g: int, ids: Tensor, bags: Tensor | None) -> Tensor:
        positions, offsets = getattr(self, f"positions_{g}"), getattr(self, f"offsets_{g}")
        table = self.tables[g]
        single = len(self.group_sizes) == 1
        local = ids if single else ids[:, positions]
        out = _lookup(table.weight, local + offsets)
        if bags is not None and self.bag_positions.numel():
            # Bag slot b holds node bag_positions[b]; find the bag nodes in this group.
            in_group = torch.isin(self.bag_positions, positions)
            if bool(in_group.any()):
                bag_nodes = self.bag_positions[in_group]
                tokens = bags[:, in_group]                                     # (B, nb, L)
                where = bag_nodes if single else torch.searchsorted(positions, bag_nodes)
                mask = (tokens != PAD).unsqueeze(-1)
                rows = _lookup(table.weight, tokens.clamp(min=0) + offsets[where].view(1, -1, 1))  # (B, nb, L, s)
                pooled = (rows * mask).sum(2) / mask.sum(2).clamp(min=1)
                out = out.index_copy(1, where, pooled)
        if self.group_keys[g][1]:
            coords = getattr(self, f"coordinates_{g}")
            placed = out.new_zeros(*out.shape[:2], self.dim)
            return placed.scatter(2, coords.unsqueeze(0).expand(out.size(0), -1, -1), out)
        return self.projections[g](out)

    def forward(self, batch: TabularBatch) -> Tensor:
        ids, bags = batch.ids, batch.bags
        if len(self.group_sizes) == 1:
            out = self._group(0, ids, bags)
        else:
            parts = [self._group(g, ids, bags) for g in range(len(self.group_sizes))]
            order = torch.cat([getattr(self, f"positions_{g}") for g in range(len(parts))])
            out = torch.cat(parts, dim=1)[:, torch.argsort(order)]
        if self.has_values and batch.values is not None:
            out = out * batch.values.unsqueeze(-1)
        return out

    def __repr__(self) -> str:
        extra = f", field_dims={self.field_dims}" if self.field_dims else ""
        return f"{type(self).__name__}(fields={self.space.num_fields}, ids={self.space.num_ids}, dim={self.dim}{extra})"
