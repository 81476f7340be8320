"""Freed heap memory is handed back between the phases of a run (fgraph/data/memory.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fgraph.data import FieldEncoder, Schema, categorical
from fgraph.data import memory
from fgraph.data import out_of_core as ooc
from fgraph.models import FM
from fgraph.train import Trainer, TrainConfig

torch.set_num_threads(1)

glibc = pytest.mark.skipif(memory._malloc_trim() is None, reason="needs a C library with malloc_trim (glibc)")


def _rss_anon_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon in /proc/self/status")


@glibc
def test_freed_heap_blocks_go_back_to_the_system():
    # 2,000 arrays of 100 kB sit on the heap (below glibc's default 128 kB mmap threshold), each followed by
    # a small array that stays: free() alone can neither merge the freed blocks nor shrink the heap.
    before = _rss_anon_mib()
    blocks, pins = [], []
    for _ in range(2000):
        blocks.append(np.ones(100_000 // 8))
        pins.append(np.ones(512))
    grown = _rss_anon_mib()
    assert grown - before > 150
    del blocks
    assert _rss_anon_mib() - before > 150      # freed, but still resident
    assert memory.release_freed_memory() is True
    assert _rss_anon_mib() - before < 50
    del pins


def test_switched_off_by_the_environment_and_a_no_op_without_glibc(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "_malloc_trim", lambda: lambda pad: calls.append(pad) or 1)
    assert memory.release_freed_memory() is True and calls == [0]
    for off in ("0", "off", "false"):
        monkeypatch.setenv("FGRAPH_MALLOC_TRIM", off)
        assert memory.release_freed_memory() is False
    assert calls == [0]
    monkeypatch.delenv("FGRAPH_MALLOC_TRIM")
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.release_freed_memory() is False


def test_no_malloc_trim_off_linux(monkeypatch):
    memory._malloc_trim.cache_clear()
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    try:
        assert memory._malloc_trim() is None
        assert memory.release_freed_memory() is False
    finally:
        memory._malloc_trim.cache_clear()


def _count_calls(monkeypatch, *modules) -> list:
    calls = []
    for module in modules:
        monkeypatch.setattr(module, "release_freed_memory", lambda: calls.append(1) or True)
    return calls


def test_trainer_releases_after_every_epoch_and_every_scoring(monkeypatch):
    import fgraph.train.trainer as trainer_module

    rng = np.random.default_rng(0)
    df = pd.DataFrame({k: rng.integers(0, 5, 600) for k in "abc"})
    df["label"] = rng.integers(0, 2, 600)
    enc = FieldEncoder(Schema(tuple(categorical(c) for c in "abc"), label="label")).fit(df)
    train, valid = enc.transform(df[:400]), enc.transform(df[400:])
    calls = _count_calls(monkeypatch, trainer_module)
    t = Trainer(FM(enc.space_, embed_dim=4), TrainConfig(epochs=3, batch_size=100, progress=False)).fit(train, valid)
    assert len(t.history) == 3
    assert len(calls) == 3 + 3       # after each epoch's steps, and after each validation scoring
    t.predict(valid)
    assert len(calls) == 7


def test_out_of_core_passes_release_after_each_pass(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": rng.choice(["x", "y", "z"], 500), "b": rng.integers(0, 9, 500),
                  "click": rng.integers(0, 2, 500)}).to_csv(path, index=False)
    calls = _count_calls(monkeypatch, ooc)
    ooc.out_of_core_splits(path, label="click", cache_dir=tmp_path / "cache", log=lambda *a: None)
    assert len(calls) == 3           # scan, fit, encode
    ooc.out_of_core_splits(path, label="click", cache_dir=tmp_path / "cache", log=lambda *a: None)
    assert len(calls) == 4           # all reused: only the encode step's call
