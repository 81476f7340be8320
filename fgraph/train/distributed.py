"""Data-parallel training over the processes ``torchrun`` starts (``torchrun --nproc_per_node=N -m fgraph train``).

What this module holds (the :class:`~fgraph.train.Trainer` uses it whenever a process group is initialised):

* :func:`init_from_env` / :func:`teardown`: the process group from torchrun's environment variables (gloo on
  CPU; ``cpu:gloo,cuda:nccl`` where GPUs exist, each process on ``cuda:LOCAL_RANK``), and its clean end;
* :func:`rank`, :func:`world_size`, :func:`is_writer` (rank 0, the only process that writes a run directory);
* :class:`ShardedLoader`: every rank draws the *same* seeded permutation as :class:`~fgraph.data.FieldLoader`,
  cuts the same global batches of ``batch_size`` rows, and reads only its contiguous share of each (the shard
  sizes differ by one row at most; a rank's shard of a last batch smaller than N is empty); for evaluation
  (``split="rows"``) each rank reads one contiguous block of the rows, in their order;
* :func:`all_gather_rows` (tensors whose first dimension differs between ranks, concatenated in rank order,
  so gathered predictions come back in the data's row order), :func:`all_reduce_sum`,
  :func:`average_gradients`;
* :func:`wrap_model`: the model's loss inside :class:`~torch.nn.parallel.DistributedDataParallel`.

The loss scaling that makes N processes take the steps of one process on the whole batch: rank r's loss is
the mean over its n_r rows; it backpropagates ``mean_r * N * n_r / B`` (B the global batch's rows), and DDP
averages the gradients over the N ranks, so the gradient is ``sum_r (n_r / B) grad(mean_r)``, the gradient
of the mean over the B rows, also when B does not divide by N. Penalties that are the same on every rank
(the regularisers, computed on the global batch's rows) are added unscaled: their average is themselves.
"""
from __future__ import annotations

import os
import sys

import torch
from torch import Tensor, nn

from ..data.loader import FieldLoader, TabularBatch
from ..data.space import as_long
from ..errors import ConfigError

#: environment variables that torchrun sets for every process it starts
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def available() -> bool:
    """Whether this torch build has ``torch.distributed``."""
    return torch.distributed.is_available()


def is_initialized() -> bool:
    """Whether a process group is initialised (by :func:`init_from_env` or by the caller)."""
    return available() and torch.distributed.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return torch.distributed.get_rank() if is_initialized() else 0


_current_rank = rank


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return torch.distributed.get_world_size() if is_initialized() else 1


def local_rank() -> int:
    """torchrun's ``LOCAL_RANK`` (the process's index on its machine; 0 without torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_writer() -> bool:
    """Whether this process writes files: rank 0, or any process without a process group."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher with its environment variables) started this process."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def init_from_env(backend: str | None = None) -> bool:
    """Initialise the process group from torchrun's environment; return whether one is initialised now.

    Does nothing (returns False) in a process torchrun did not start, and nothing when a group exists already.
    ``backend`` default: ``"gloo"`` without CUDA, ``"cpu:gloo,cuda:nccl"`` with it (CPU tensors, such as
    gathered predictions, go over gloo, CUDA tensors over nccl), with the process's GPU ``cuda:LOCAL_RANK``.
    """
    if is_initialized():
        return True
    if not launched_by_torchrun():
        return False
    if not available():
        raise ConfigError("this process was started by torchrun, but this torch build has no torch.distributed; "
                          "run fgraph without torchrun, or install a torch build with distributed support")
    if backend is None:
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available() and "nccl" in backend:
        torch.cuda.set_device(local_rank())
    torch.distributed.init_process_group(backend=backend)
    return True


def teardown(wait: bool = True) -> None:
    """End the process group (if one is initialised): wait for every rank (``wait``; not after an error, when
    the other ranks may be inside another collective), then destroy it."""
    if not is_initialized():
        return
    try:
        if wait:
            torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


def quiet_followers() -> None:
    """Send the standard output of ranks other than 0 to ``os.devnull`` (their errors still reach stderr), so
    that a run's messages are printed once."""
    if not is_writer():
        sys.stdout = open(os.devnull, "w", encoding="utf-8")


def device_for(device: str) -> torch.device:
    """The device of this rank: ``cuda`` (any index) becomes ``cuda:LOCAL_RANK`` under a process group with
    several processes, so that each process has its own GPU; other devices stay as they are."""
    dev = torch.device(device)
    if dev.type == "cuda" and world_size() > 1:
        return torch.device("cuda", local_rank())
    return dev


# -- sharding ------------------------------------------------------------------------------------------------
def shard_bounds(start: int, stop: int, rank_: int, world: int) -> tuple[int, int]:
    """Rank ``rank_``'s contiguous part ``[lo, hi)`` of ``[start, stop)`` split into ``world`` parts whose sizes
    differ by one at most (the first ``(stop - start) % world`` parts one row larger; as ``torch.tensor_split``)."""
    q, r = divmod(stop - start, world)
    lo = start + rank_ * q + min(rank_, r)
    return lo, lo + q + (1 if rank_ < r else 0)


class ShardedLoader(FieldLoader):
    """A :class:`~fgraph.data.FieldLoader` that yields this rank's share of every batch.

    ``split="batches"`` (training): the global batches are those of ``FieldLoader(data, batch_size, shuffle,
    seed=seed)`` (the same generator, so the same permutation on every rank and in one process); each is split
    into ``world`` contiguous shards (:func:`shard_bounds`) and this rank reads only its own rows. Every
    yielded batch has ``global_rows``, the size of the global batch it is a shard of. ``len()`` is the number
    of global batches, the same on every rank, so every rank steps the same number of times.

    ``split="rows"`` (evaluation): this rank reads the rows ``shard_bounds(0, len(data), rank, world)`` in their
    order, in batches of ``batch_size`` (``shuffle`` must be False); gathered in rank order they are the data.
    """

    def __init__(self, data, batch_size: int = 4096, shuffle: bool = False, seed: int | None = None, device=None,
                 *, drop_last: bool = False, rank: int | None = None, world: int | None = None, split: str = "batches"):
        super().__init__(data, batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed, device=device)
        if split not in ("batches", "rows"):
            raise ValueError(f"split must be 'batches' or 'rows', got {split!r}")
        if split == "rows" and self.shuffle:
            raise ValueError("split='rows' keeps the rows' order: it takes no shuffle")
        self.rank = _current_rank() if rank is None else int(rank)
        self.world = world_size() if world is None else int(world)
        self.split = split

    def __len__(self) -> int:
        if self.split == "batches":
            return super().__len__()
        lo, hi = shard_bounds(0, len(self.data), self.rank, self.world)
        return -(-(hi - lo) // self.batch_size)

    def _batch(self, rows) -> TabularBatch:
        # batch_tensors: an out-of-core table (CachedTable) reads only this rank's rows of the batch.
        t = self.data.batch_tensors(rows)
        batch = TabularBatch(as_long(t["ids"]), t["values"], None if t["bags"] is None else as_long(t["bags"]),
                             t["y"], self.data.space)
        return batch if self.device is None else batch.to(self.device)

    def __iter__(self):
        n = len(self.data)
        if self.split == "rows":
            lo, hi = shard_bounds(0, n, self.rank, self.world)
            for start in range(lo, hi, self.batch_size):
                stop = min(start + self.batch_size, hi)
                batch = self._batch(slice(start, stop))
                batch.global_rows = stop - start
                yield batch
            return
        # The same draw as FieldLoader.__iter__, so the checkpointed generator states mean the same.
        order = torch.randperm(n, generator=self.generator) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.drop_last and stop - start < self.batch_size:
                break
            lo, hi = shard_bounds(start, stop, self.rank, self.world)
            batch = self._batch(slice(lo, hi) if order is None else order[lo:hi])
            batch.global_rows = stop - start
            yield batch


# -- collectives -----------------------------------------------------------------------------------------------
def all_reduce_sum(tensor: Tensor) -> Tensor:
    """``tensor`` summed over the ranks, in place (returned as well); unchanged without a process group."""
    if world_size() > 1:
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
    return tensor


def all_gather_rows(tensor: Tensor) -> Tensor:
    """The ``tensor`` of every rank concatenated along the first dimension, in rank order; the ranks' first
    dimensions may differ (even be 0), the other dimensions must agree. Unchanged without a process group."""
    world = world_size()
    if world == 1:
        return tensor
    size = torch.tensor([tensor.size(0)], dtype=torch.long, device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    torch.distributed.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    longest = max(sizes)
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[:tensor.size(0)] = tensor
    parts = [torch.empty_like(padded) for _ in range(world)]
    torch.distributed.all_gather(parts, padded.contiguous())
    return torch.cat([part[:s] for part, s in zip(parts, sizes)])


def gather_batch(batch: TabularBatch) -> TabularBatch:
    """The global batch's ``ids`` and ``bags`` (what the ``"rows"`` form of the embedding penalty looks up), from
    every rank's shard; no values or labels."""
    ids = all_gather_rows(batch.ids)
    bags = None if batch.bags is None else all_gather_rows(batch.bags)
    return TabularBatch(ids, None, bags, None, batch.space)


def average_gradients(params) -> None:
    """Average the gradients of ``params`` over the ranks (what DDP does for the parameters of its forward
    pass; here for an optimiser stepped after a plain forward pass, e.g. FIVES's validation steps). A missing
    gradient counts as zeros."""
    world = world_size()
    if world == 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        torch.distributed.all_reduce(p.grad, op=torch.distributed.ReduceOp.SUM)
        p.grad.div_(world)


# -- the model ---------------------------------------------------------------------------------------------------
class LossModule(nn.Module):
    """The model's training loss as a module, so that DDP's forward pass is the loss's (models with several
    outputs compute their loss themselves, :meth:`~fgraph.models.CTRModel.loss`). An empty shard (``None`` or no
    rows) gives a zero that depends on every parameter, so that every rank's backward pass reduces the same
    gradients."""

    def __init__(self, model: nn.Module, loss_fn):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: TabularBatch | None):
        if batch is None or batch.num_rows == 0:
            return sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
        return self.model.loss(batch, self.loss_fn)


def check_model(model: nn.Module, device: torch.device) -> None:
    """Refuse what data-parallel training cannot make exact: batch normalisation on CPU (its statistics would
    be per shard; ``SyncBatchNorm`` needs a GPU)."""
    norms = [name for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if norms and device.type != "cuda":
        raise ConfigError(f"{type(model).__name__} has batch normalisation ({norms[0]}), whose statistics would "
                          f"be computed per process under torchrun; torch's SyncBatchNorm, which shares them, "
                          f"needs CUDA: train it in one process, on GPUs, or without batch normalisation")


def wrap_model(model: nn.Module, loss_fn, device: torch.device) -> nn.Module:
    """``LossModule(model, loss_fn)`` in DistributedDataParallel (batch norms made SyncBatchNorm on CUDA).
    ``find_unused_parameters=True``: a model may leave some parameters out of a step (an empty shard does not,
    see :class:`LossModule`)."""
    if device.type == "cuda":
        # In place on the model's children, keeping the same parameters (the optimisers' references hold).
        nn.SyncBatchNorm.convert_sync_batchnorm(model)
    module = LossModule(model, loss_fn)
    ids = [device.index if device.index is not None else local_rank()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)


__all__ = ["init_from_env", "teardown", "rank", "world_size", "local_rank", "is_writer", "is_initialized",
           "launched_by_torchrun", "quiet_followers", "device_for", "shard_bounds", "ShardedLoader",
           "all_reduce_sum", "all_gather_rows", "gather_batch", "average_gradients", "LossModule",
           "check_model", "wrap_model"]
