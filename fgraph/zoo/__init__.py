"""fgraph's model zoo: one shipped configuration per (model, data set), used by ``fgraph train`` by default.

A configuration is a YAML file ``<model>-<dataset>.yaml`` in this folder, in the format ``fgraph train
--config`` reads (see :mod:`fgraph.configfile`). Its ``source`` entry records how it was found (the command,
the search, the validation figure) and sets nothing. ``fgraph train --model fignn --dataset frappe`` uses
``fignn-frappe.yaml`` and says so; options given on the command line or in ``--config`` win over it, and
``--no-zoo`` (``zoo=False``) leaves it out. A pair without a file gets the model's and the trainer's own
defaults.
"""
from __future__ import annotations

from pathlib import Path

from ..configfile import read_config_file

ZOO_DIR = Path(__file__).resolve().parent


def config_path(model: str, dataset: str) -> Path | None:
    """The shipped configuration of ``model`` on ``dataset`` (canonical names), or None."""
    path = ZOO_DIR / f"{model}-{dataset}.yaml"
    return path if path.is_file() else None


def load_config(model: str, dataset: str) -> tuple[dict, Path | None]:
    """``(options, path)`` of the shipped configuration, or ``({}, None)`` when there is none.

    The options exclude ``model``, ``dataset`` and ``source``; a file naming another model or data set than
    its file name is a packaging error and raises.
    """
    path = config_path(model, dataset)
    if path is None:
        return {}, None
    options = read_config_file(path)
    for key, want in (("model", model), ("dataset", dataset)):
        if options.get(key, want) != want:
            raise RuntimeError(f"shipped configuration {path} names {key} {options[key]!r}, not {want!r}")
    return {k: v for k, v in options.items() if k not in ("model", "dataset", "source")}, path


def available() -> list[tuple[str, str]]:
    """The ``(model, dataset)`` pairs with a shipped configuration."""
    out = []
    for path in sorted(ZOO_DIR.glob("*.yaml")):
        model, _, dataset = path.stem.rpartition("-")
        out.append((model, dataset))
    return out


__all__ = ["ZOO_DIR", "available", "config_path", "load_config"]
