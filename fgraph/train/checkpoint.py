"""Checkpoints: written atomically, read back with ``weights_only=True``."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..data.space import FeatureSpace

CHECKPOINT_FORMAT = 1


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` through a temporary file and a rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an fgraph checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def check_same_space(saved: dict | FeatureSpace, current: FeatureSpace, what: str = "checkpoint") -> None:
    """Raise if data encoded in ``current`` cannot feed a model trained on ``saved``."""
    saved_space = saved if isinstance(saved, FeatureSpace) else FeatureSpace.from_dict(saved)
    diff = saved_space.describe_difference(current)
    if diff:
        raise ValueError(f"the {what} was trained on a different schema than the data given: {diff}")
