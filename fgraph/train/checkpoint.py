"""Checkpoints: written atomically, read back with ``weights_only=True`` and checked before use.

A checkpoint is a ``torch.save`` of a plain dict (tensors, numbers, strings, lists and dicts only), so that
``torch.load(weights_only=True)`` reads it without unpickling arbitrary objects. Everything that can go wrong
with one -- a missing, empty, truncated or foreign file, a file holding Python objects, a dict without the
keys fgraph writes, weights that do not fit the model, an encoder that is not the data's -- is a
:class:`~fgraph.errors.CheckpointError` naming the file and what is wrong with it.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import numpy as np
import torch

from ..data.space import FeatureSpace
from ..errors import CheckpointError, InputFileNotFoundError, RunDirectoryError

CHECKPOINT_FORMAT = 1

#: what every fgraph checkpoint holds, and the type each entry must have
REQUIRED_KEYS = {
    "format": int, "model_name": str, "model_hparams": dict, "model_state": dict, "optimizers": list,
    "space": dict, "config": dict, "run_info": dict, "epoch": int, "history": list,
}


def to_plain(obj):
    """Plain Python data (what ``torch.load(weights_only=True)`` and JSON accept): dicts with string keys,
    lists for tuples, Python numbers for NumPy scalars, and the text of anything else."""
    if isinstance(obj, dict):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` through a temporary file and a rename, so a crash never leaves half a file.

    The temporary file is flushed to disk before the rename: even a machine that loses power keeps either
    the old checkpoint or the new one, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:   # a full disk, a read-only directory: the previous checkpoint is still whole
        raise RunDirectoryError(f"cannot write checkpoint {path}: {e.strerror or e}; the previous checkpoint "
                                f"(if any) is left as it was") from None
    finally:
        if tmp.exists():   # torch.save failed half-way: leave no temporary file behind
            tmp.unlink()


def _read(path: Path, map_location):
    """``torch.load`` with every failure turned into a CheckpointError that says what the file is."""
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): it was not written by a finished epoch; "
                              f"train again (--overwrite) or restore it from a copy")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL (\S+)", str(e))
        if found:
            # The file asks to build Python objects: either not fgraph's, or crafted to run code on loading.
            raise CheckpointError(
                f"checkpoint {path} holds Python objects ({found.group(1)}), not only tensors and plain data, "
                f"and fgraph refuses to unpickle them (torch.load weights_only=True): it was not written by "
                f"fgraph or has been tampered with; do not load it unless you trust where it came from") from None
        raise CheckpointError(f"checkpoint {path} ({size} bytes) cannot be read: it is not a torch checkpoint, "
                              f"or it is truncated or corrupt") from None
    except Exception as e:   # zip reader errors (RuntimeError), EOFError, OSError, KeyError on a text file...
        # torch's zip reader says what it missed ("failed finding central directory"); other errors say little.
        first = str(e).split(". ")[0].strip()
        reason = f" (torch: {first})" if isinstance(e, RuntimeError) and first else ""
        raise CheckpointError(f"checkpoint {path} ({size} bytes) cannot be read: it is truncated, corrupt or "
                              f"not a torch checkpoint{reason}") from None


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read an fgraph checkpoint and check that it holds what fgraph writes.

    Raises:
        InputFileNotFoundError: there is no file at ``path``.
        CheckpointError: the file is empty, truncated, corrupt, not a torch file, holds Python objects, is a
            torch file of something else (a tensor, another program's dict), or lacks keys fgraph needs.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise InputFileNotFoundError(f"no checkpoint at {path}")
    state = _read(path, map_location)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not an fgraph checkpoint: it holds a {type(state).__name__}, "
                              f"not fgraph's dict of model, optimisers, encoder and history")
    if "format" not in state or "model_state" not in state:
        keys = sorted(map(str, state))[:8]
        raise CheckpointError(f"{path} is not an fgraph checkpoint: its dict has keys {keys}, not fgraph's "
                              f"('format', 'model_state', ...)")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {state.get('format')!r}; this fgraph reads format "
                              f"{CHECKPOINT_FORMAT}")
    missing = sorted(k for k in REQUIRED_KEYS if k not in state)
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}: it is damaged or was not written by fgraph's "
                              f"trainer")
    for key, typ in REQUIRED_KEYS.items():
        if not isinstance(state[key], typ) or (typ is int and isinstance(state[key], bool)):
            raise CheckpointError(f"checkpoint {path} has {key!r} of type {type(state[key]).__name__}, expected "
                                  f"{typ.__name__}: it is damaged or was not written by fgraph's trainer")
    for key in ("model_state", "best_model_state"):
        weights = state.get(key)
        if weights is not None and (not isinstance(weights, dict)
                                    or not all(isinstance(v, torch.Tensor) for v in weights.values())):
            raise CheckpointError(f"checkpoint {path}: {key!r} is not a dict of tensors")
    return state


def check_weights(model: torch.nn.Module, weights: dict, path: str | os.PathLike | None,
                  what: str = "weights") -> None:
    """Raise a CheckpointError naming the file, the missing and unexpected entries and the shapes that differ
    unless ``weights`` fit ``model`` (without loading them)."""
    where = "the checkpoint" if path is None else f"checkpoint {path}"
    own = model.state_dict()
    missing = sorted(k for k in own if k not in weights)
    unexpected = sorted(k for k in weights if k not in own)
    shapes = [f"{k} {tuple(weights[k].shape)} (the model has {tuple(own[k].shape)})" for k in own
              if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        problems.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    if shapes:
        problems.append(f"shapes differ: {'; '.join(shapes[:3])}{' ...' if len(shapes) > 3 else ''}")
    if problems:
        raise CheckpointError(f"the {what} in {where} do not fit a {type(model).__name__} built for "
                              f"this encoder: {', '.join(problems)}")


def load_weights(model: torch.nn.Module, weights: dict, path: str | os.PathLike | None,
                 what: str = "weights") -> None:
    """``model.load_state_dict(weights)`` (strict), with a mismatch told as a CheckpointError naming the file
    and what does not fit (see :func:`check_weights`)."""
    check_weights(model, weights, path, what)
    try:
        model.load_state_dict(weights)
    except (RuntimeError, ValueError, TypeError) as e:   # e.g. a dtype torch cannot copy
        where = "the checkpoint" if path is None else f"checkpoint {path}"
        raise CheckpointError(f"the {what} in {where} cannot be loaded into the "
                              f"{type(model).__name__}: {str(e).splitlines()[0]}") from None


def check_encoder_fingerprint(saved: str | None, current: str | None, path, what: str = "encoder") -> None:
    """Refuse an encoder whose vocabularies are not the ones a checkpoint's ids were trained on.

    Two encoders with the same field names and vocabulary sizes give the same feature space, so only the
    fingerprint (a hash of the vocabularies themselves) tells that id 3 meant ``"red"`` then and ``"blue"``
    now. ``None`` on either side (an old checkpoint, no encoder) skips the check.
    """
    if saved is None or current is None or saved == current:
        return
    where = "the checkpoint" if path is None else f"checkpoint {path}"
    raise CheckpointError(f"{where} was trained with another encoder than the {what}: the "
                          f"vocabularies differ although sizes match (fingerprint {saved[:12]}... in the "
                          f"checkpoint, {current[:12]}... in the {what}), so every id would change meaning; "
                          f"use the run's own encoder, or train a new run")


def check_same_space(saved: dict | FeatureSpace, current: FeatureSpace, what: str = "checkpoint",
                     error: type[Exception] = CheckpointError, other: str = "the data given") -> None:
    """Raise ``error`` if data encoded in ``current`` cannot feed a model trained on ``saved``.

    A checkpoint that does not fit the data is a :class:`CheckpointError` (the default); the trainer passes
    :class:`~fgraph.errors.DataError` when the data given to a model in memory does not fit it.
    """
    try:
        saved_space = saved if isinstance(saved, FeatureSpace) else FeatureSpace.from_dict(saved)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"the {what}'s feature space cannot be read ({e!r}): the checkpoint is damaged "
                              f"or not fgraph's") from None
    diff = saved_space.describe_difference(current)
    if diff:
        raise error(f"the {what} was trained on a different schema than {other}: {diff}")
