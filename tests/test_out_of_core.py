"""The out-of-core path: chunked fit, the memory-mapped cache, loaders reading it, and the switch in train()."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from fgraph.data import FieldEncoder, FieldLoader, Schema, categorical, numeric
from fgraph.data import out_of_core as ooc
from fgraph.data.files import file_splits

torch.set_num_threads(1)


def _table(n=3000, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "user": rng.zipf(1.5, n) % 500,                     # integers, many distinct: numeric by inference
        "item": [f"i{v}" for v in rng.zipf(1.3, n) % 300],
        "device": rng.choice(["ios", "android", "web", ""], n),
        "price": np.round(rng.lognormal(2, 1, n), 3),
        "hour": rng.integers(0, 24, n),
        "code": rng.choice(["007", "12", "3"], n),          # leading zero: text
        "click": rng.integers(0, 2, n),
    })


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "t.csv"
    frame = _table()
    frame.loc[5, "price"] = np.nan
    frame.to_csv(path, index=False)
    return path


def _schema():
    return Schema((categorical("item"), categorical("device"), numeric("price"), numeric("user", "bucket",
                                                                                         buckets=(4, 16)),
                   numeric("hour", "log"), categorical("code")), label="click")


def _equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if a[k] is None:
            assert b[k] is None
        else:
            assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


def test_chunked_fit_equals_whole_fit():
    frame = _table(5000)
    enc = FieldEncoder(_schema(), min_count=2).fit(frame)
    chunks = [frame.iloc[i:i + 777] for i in range(0, len(frame), 777)]
    enc2 = FieldEncoder(_schema(), min_count=2).fit_chunks(chunks)
    assert enc.fingerprint() == enc2.fingerprint() and enc.state_dict() == enc2.state_dict()
    enc3 = FieldEncoder(_schema(), min_count=2)
    for c in chunks:
        enc3.partial_fit(c)
    assert enc3.fingerprint() == enc.fingerprint()
    _equal(enc.transform(frame).tensors(), enc2.transform(frame).tensors())
    # chunk-wise transform == transform in one go
    parts = [enc.transform(c) for c in chunks]
    assert torch.equal(torch.cat([p.ids for p in parts]), enc.transform(frame).ids)
    assert torch.equal(torch.cat([p.values for p in parts]), enc.transform(frame).values)


def test_exact_scaler_does_not_depend_on_chunks():
    x = np.random.default_rng(1).normal(3, 7, 100_003)
    frame = pd.DataFrame({"x": x})
    s = Schema((numeric("x"),), label="y")
    one = FieldEncoder(s).fit(frame).scalers_["x"]
    many = FieldEncoder(s).fit_chunks(frame.iloc[i:i + 7693] for i in range(0, len(frame), 7693)).scalers_["x"]
    assert one == many
    assert one[0] == pytest.approx(x.mean(), rel=1e-12) and one[1] == pytest.approx(x.std(), rel=1e-12)


def test_smallest_dtype():
    assert ooc.smallest_int_dtype(2) == np.int8 and ooc.smallest_int_dtype(128) == np.int8
    assert ooc.smallest_int_dtype(129) == np.int16 and ooc.smallest_int_dtype(32768) == np.int16
    assert ooc.smallest_int_dtype(32769) == np.int32


def _both(csv, tmp_path, chunk_rows=700):
    mem = file_splits(csv, label="click", seed=3)
    enc = FieldEncoder(mem.schema).fit(mem.train)
    out = ooc.out_of_core_splits(csv, label="click", seed=3, cache_dir=tmp_path / "cache", chunk_rows=chunk_rows,
                                 log=lambda *_: None)
    return mem, enc, out


def test_out_of_core_splits_equal_in_memory(csv, tmp_path):
    mem, enc, out = _both(csv, tmp_path)
    assert out["encoder"].fingerprint() == enc.fingerprint()
    assert out["report"].schema == mem.schema
    for name in ("train", "valid", "test"):
        d = out["data"][name]
        m = enc.transform(getattr(mem, name))
        assert len(d) == len(m)
        for shuffle in (False, True):
            a = list(FieldLoader(m, 256, shuffle=shuffle, seed=5))
            b = list(FieldLoader(d, 256, shuffle=shuffle, seed=5))
            assert len(a) == len(b)
            for x, y in zip(a, b):
                _equal({"ids": x.ids, "values": x.values, "bags": x.bags, "y": x.y},
                       {"ids": y.ids, "values": y.values, "bags": y.bags, "y": y.y})
        assert torch.equal(d.y, m.y)
    # the smallest dtype per field, ids stored per dtype group
    table = out["data"]["train"]
    for dt, arr in table.groups.items():
        cards = [enc.space_.cardinalities[k] for k in table.group_fields[dt]]
        assert all(ooc.smallest_int_dtype(c) == np.dtype(dt) for c in cards)
        assert arr.dtype == np.dtype(dt)


def test_cache_reused_and_invalidated(csv, tmp_path):
    kw = dict(label="click", seed=0, cache_dir=tmp_path / "cache", chunk_rows=1000, log=lambda *_: None)
    first = ooc.out_of_core_splits(csv, **kw)
    assert first["reused"] == {"fit": False, "table": False}
    table_dir = first["data"]["train"].directory
    mtime = (table_dir / "meta.json").stat().st_mtime_ns
    second = ooc.out_of_core_splits(csv, **kw)
    assert second["reused"] == {"fit": True, "table": True}
    assert second["data"]["train"].directory == table_dir and (table_dir / "meta.json").stat().st_mtime_ns == mtime
    # the file changes: a new fit and a new table
    frame = pd.read_csv(csv)
    frame.loc[0, "item"] = "brand-new"
    frame.to_csv(csv, index=False)
    os.utime(csv, ns=(mtime + 10**9, mtime + 10**9))
    third = ooc.out_of_core_splits(csv, **kw)
    assert third["reused"] == {"fit": False, "table": False}
    assert third["data"]["train"].directory != table_dir


def test_partial_cache_is_not_used(csv, tmp_path):
    kw = dict(label="click", seed=0, cache_dir=tmp_path / "cache", chunk_rows=1000, log=lambda *_: None)
    first = ooc.out_of_core_splits(csv, **kw)
    table_dir = first["data"]["train"].directory
    # A writer killed mid-write leaves a temporary directory: never read, removed by the next writer.
    shutil.rmtree(table_dir)
    tmp = table_dir.parent / f".tmp-{table_dir.name}-dead"
    tmp.mkdir()
    (tmp / "meta.json").write_text("{garbage")
    again = ooc.out_of_core_splits(csv, **kw)
    assert again["reused"]["table"] is False and not tmp.exists()
    # An entry without its COMPLETE marker (killed between the arrays and the rename) is not reused either.
    (table_dir / "COMPLETE").unlink()
    assert ooc.out_of_core_splits(csv, **kw)["reused"]["table"] is False


def test_train_switches_and_matches_in_memory(csv, tmp_path, monkeypatch, capsys):
    from fgraph.api import train

    opts = dict(label="click", epochs=2, progress=False, seed=1, batch_size=128)
    mem = train("fm", data=str(csv), out=str(tmp_path / "mem"), **opts)
    monkeypatch.setenv(ooc.THRESHOLD_ENV, "1")
    monkeypatch.setenv(ooc.CACHE_ENV, str(tmp_path / "cache"))
    big = train("fm", data=str(csv), out=str(tmp_path / "big"), **opts)
    printed = capsys.readouterr().out
    assert sum("out-of-core:" in ln and "larger than" in ln for ln in printed.splitlines()) == 1
    assert isinstance(big.data["train"], ooc.MemmapData)
    assert big.encoder.fingerprint() == mem.encoder.fingerprint()
    assert big.metrics["test"] == mem.metrics["test"] and big.metrics["valid"] == mem.metrics["valid"]


def _blocks_text(text: bytes, size: int) -> list[bytes]:
    import io
    return list(ooc._record_blocks(io.BytesIO(text), b'"', size))


@pytest.mark.parametrize("size", [1, 3, 7, 16, 64, 10_000])
def test_record_blocks_cut_only_between_records(size):
    # a quoted value with line ends and doubled quotes, a CRLF line, no line end after the last record
    text = b'a,b\n1,"x\ny"\n2,"he said ""hi""\n,ok"\r\n3,z\n4,"""\n"""\n5,w'
    blocks = _blocks_text(text, size)
    assert b"".join(blocks) == text                      # nothing lost or reordered
    for block in blocks[:-1]:
        assert block.endswith(b"\n") and block.count(b'"') % 2 == 0
    # each block parses on its own into whole records: together they are the file's rows
    import io
    whole = pd.read_csv(io.BytesIO(text), dtype=str)
    pieces = [pd.read_csv(io.BytesIO(b), dtype=str, header=0 if k == 0 else None, names=None if k == 0 else ["a", "b"])
              for k, b in enumerate(blocks)]
    got = pd.concat(pieces, ignore_index=True)
    assert got.equals(whole)


def test_iter_chunks_small_blocks_equal_one_read(tmp_path, monkeypatch):
    path = tmp_path / "q.csv"
    frame = _table(500)
    frame["note"] = [f'line {i}\nsecond "{i}"' if i % 7 == 0 else f"n{i}" for i in range(len(frame))]
    frame.to_csv(path, index=False)
    whole = pd.concat([c for _, c in ooc.iter_chunks(path, chunk_rows=10**6)])
    monkeypatch.setattr(ooc, "_BLOCK_BYTES", 97)          # many blocks, cut inside quoted values too
    parts = list(ooc.iter_chunks(path, chunk_rows=50))
    assert len(parts) > 5
    assert [s for s, _ in parts] == list(np.cumsum([0] + [len(c) for _, c in parts[:-1]]))
    small = pd.concat([c for _, c in parts])
    assert len(small) == len(frame) == len(whole)
    for col in frame.columns:
        assert small[col].astype(object).tolist() == whole[col].astype(object).tolist(), col
    assert small["note"].astype(str).tolist() == frame["note"].tolist()


def test_memmap_pages_released_every_release_rows(csv, tmp_path, monkeypatch):
    out = ooc.out_of_core_splits(csv, label="click", schema=_schema(), run_dir=tmp_path / "run")
    train = out["data"]["train"]
    released = []
    monkeypatch.setattr(ooc, "_release", lambda arr: released.append(arr))
    monkeypatch.setattr(ooc, "RELEASE_ROWS", 1000)
    arrays = len(train.groups) + (train._values is not None) + (train._y is not None) + (train.index is not None)
    batches = list(FieldLoader(train, 256, shuffle=True, seed=1))
    rows_read = sum(len(b.y) for b in batches)
    # one release of every array per 1000 rows read (after the batch that crosses the mark)
    assert len(released) == arrays * (rows_read // 1024) and released
    assert train._unreleased == rows_read - 1024 * (rows_read // 1024)
