"""Mini-batches of encoded rows, cut by tensor slicing (no per-row Python work)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._validate import as_bool, as_int
from ..errors import ConfigError, DataError
from .space import EncodedData, FeatureSpace, as_long


@dataclass
class TabularBatch:
    """One mini-batch: ``ids (B, n)`` int64, ``values (B, n)`` or None, ``bags (B, n_bag, L)`` or None,
    ``y (B,)`` or None, and the :class:`FeatureSpace` they live in."""

    ids: Tensor
    values: Tensor | None
    bags: Tensor | None
    y: Tensor | None
    space: FeatureSpace

    @property
    def num_rows(self) -> int:
        return self.ids.size(0)

    @property
    def num_fields(self) -> int:
        return self.ids.size(1)

    def to(self, device) -> "TabularBatch":
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return TabularBatch(move(self.ids), move(self.values), move(self.bags), move(self.y), self.space)

    def to_graph(self, self_loops: bool = True):
        """Moved to the graph layer (the data layer knows nothing of graphs): use
        ``fgraph.graph.batch_graph(batch, self_loops=...)``."""
        from ..errors import ConfigError

        raise ConfigError("TabularBatch.to_graph() has moved: use fgraph.graph.batch_graph(batch, "
                          f"self_loops={self_loops})")


class FieldLoader:
    """Iterate over an :class:`EncodedData` in mini-batches.

    Each batch is a slice of the stored tensors (a random permutation's slice when ``shuffle=True``), so the
    cost per batch does not grow with Python work per row.

    Args:
        data: the encoded table.
        batch_size: rows per batch.
        shuffle: draw a new permutation every epoch.
        drop_last: drop a last, smaller batch.
        seed: seeds the shuffling generator, so that the order of batches repeats exactly.
        as_graph: no longer here: for PyG ``Batch`` objects of field graphs, wrap the loader in
            :func:`fgraph.graph.graph_batches` (``as_graph=True`` raises a ConfigError that says so).
        self_loops: likewise (an argument of :func:`fgraph.graph.graph_batches`).
        device: move every batch there.
    """

    def __init__(self, data: EncodedData, batch_size: int = 4096, shuffle: bool = False, drop_last: bool = False,
                 seed: int | None = None, as_graph: bool = False, self_loops: bool | None = None, device=None):
        if as_graph or self_loops is not None:
            raise ConfigError("FieldLoader(as_graph=..., self_loops=...) has moved to the graph layer: iterate "
                              "fgraph.graph.graph_batches(FieldLoader(data, ...), self_loops=...) for PyG batches "
                              "of field graphs")
        if not isinstance(data, EncodedData):
            raise TypeError(f"FieldLoader needs EncodedData (from FieldEncoder.transform), got {type(data).__name__}")
        self.batch_size = as_int("batch_size", batch_size, minimum=1, where="FieldLoader")
        seed = as_int("seed", seed, allow_none=True, where="FieldLoader")
        if len(data) == 0:
            raise DataError("cannot load batches from an empty table")
        # Ids past a field's vocabulary would index another field's embedding rows: refuse them here,
        # before any model sees them (one min and one max per column).
        self.data = data.validate()
        self.shuffle = as_bool("shuffle", shuffle, where="FieldLoader")
        self.drop_last = as_bool("drop_last", drop_last, where="FieldLoader")
        self.device = device
        self.generator = torch.Generator()
        self.generator.manual_seed(0 if seed is None else seed)

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.data)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.drop_last and stop - start < self.batch_size:
                break
            # A slice, or the permutation's slice; an out-of-core table (CachedTable) reads just these rows.
            t = self.data.batch_tensors(slice(start, stop) if order is None else order[start:stop])
            batch = TabularBatch(as_long(t["ids"]), t["values"], None if t["bags"] is None else as_long(t["bags"]),
                                 t["y"], self.data.space)
            if self.device is not None:
                batch = batch.to(self.device)
            yield batch

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
