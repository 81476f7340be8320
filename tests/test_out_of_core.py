"""The out-of-core path: chunked fit, the record-file cache, loaders reading it, and the switch in train()."""
from __future__ import annotations

import json
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
    # the smallest dtype per field, ids stored per dtype group in one packed record per row
    table = out["data"]["train"]
    for dt, fields in table.group_fields.items():
        cards = [enc.space_.cardinalities[k] for k in fields]
        assert all(ooc.smallest_int_dtype(c) == np.dtype(dt) for c in cards)
        assert table.dtype[f"ids_{dt}"].base == np.dtype(dt) and table.dtype[f"ids_{dt}"].shape == (len(fields),)
    assert sorted(np.concatenate(list(table.group_fields.values())).tolist()) == list(range(enc.space_.num_fields))
    assert table.dtype.itemsize == sum(table.dtype[f].itemsize for f in table.dtype.names)   # packed
    whole = np.load(table.path)   # a plain .npy file: numpy reads it back
    assert len(whole) == 3000 and whole.dtype == table.dtype


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
    assert isinstance(big.data["train"], ooc.CachedTable)
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


def test_batches_read_one_pread_per_run_of_rows(csv, tmp_path, monkeypatch):
    out = ooc.out_of_core_splits(csv, label="click", schema=_schema(), run_dir=tmp_path / "run")
    train, whole = out["data"]["train"], ooc.CachedTable(out["data"]["train"].directory)
    calls = []
    real = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, off: calls.append((n, off)) or real(fd, n, off))
    size = train.dtype.itemsize
    # the whole file unshuffled: one read per batch, of the batch's bytes
    batches = list(FieldLoader(whole, 1000, shuffle=False))
    assert len(calls) == 3 and [n for n, _ in calls] == [1000 * size] * 3
    # a split: one read per run of consecutive rows of the batch
    calls.clear()
    b = train.batch_tensors(slice(0, 500))
    pos = train.index[:500].astype(np.int64)
    assert len(calls) == 1 + int((np.diff(pos) != 1).sum())
    assert sum(n for n, _ in calls) == 500 * size
    assert torch.equal(b["ids"], whole.batch_tensors(torch.from_numpy(pos))["ids"])
    # shuffled and repeated rows come back in the order asked for
    rows = torch.tensor([7, 3, 3, 2999, 0, 4])
    got = whole.batch_tensors(rows)
    for k, r in enumerate(rows.tolist()):
        assert torch.equal(got["ids"][k], whole.batch_tensors(slice(r, r + 1))["ids"][0])
    with pytest.raises(IndexError, match=r"\[0, 3000\)"):
        whole.batch_tensors(torch.tensor([3000]))
    # take() keeps the rows and the reader
    shuffled = [list(FieldLoader(t, 256, shuffle=True, seed=2)) for t in (train, train.take(np.arange(len(train))))]
    for x, y in zip(*shuffled):
        assert torch.equal(x.ids, y.ids) and torch.equal(x.y, y.y)
    # through a memory map (the default without os.pread: Windows): the same batches
    assert ooc.CachedTable(whole.directory, reader="mmap").take(np.arange(5)).reader == "mmap"
    with pytest.raises(ooc.ConfigError, match="reader='nfs'"):
        ooc.CachedTable(whole.directory, reader="nfs")
    monkeypatch.delattr(os, "pread")
    mapped = ooc.CachedTable(whole.directory)
    assert mapped.reader == "mmap"
    for x, y in zip(batches, FieldLoader(mapped, 1000, shuffle=False)):
        assert torch.equal(x.ids, y.ids) and torch.equal(x.values, y.values) and torch.equal(x.y, y.y)


def _rss_file_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise KeyError("RssFile")


@pytest.mark.skipif(not os.path.exists("/proc/self/status") or not hasattr(os, "pread"),
                    reason="reads RssFile from /proc/self/status (Linux)")
def test_shuffled_reads_do_not_map_the_table(csv, tmp_path):
    # A 600k-row table in a real cache entry's layout (about 10 MB): random batches read through a memory
    # map had mapped up to 16 pages around every row read, so 40 batches of 1024 rows would have brought
    # in the whole file; read with pread, the process's file-backed resident memory stays put.
    src = ooc.out_of_core_splits(csv, label="click", schema=_schema(), run_dir=tmp_path / "run")["data"]["train"]
    big = tmp_path / "big"
    big.mkdir()
    (big / "meta.json").write_text(json.dumps(dict(src.meta, rows=600_000)))
    rec = np.load(src.path)
    with open(big / "rows.npy", "wb") as fh:
        ooc._write_header(fh, rec.dtype, 600_000)
        fh.write(np.resize(rec, 600_000).tobytes())
    table = ooc.CachedTable(big)
    file_kib = (big / "rows.npy").stat().st_size // 1024
    before = _rss_file_kib()
    loader = iter(FieldLoader(table, 1024, shuffle=True, seed=0))
    batches = [next(loader) for _ in range(40)]
    grown = _rss_file_kib() - before
    assert grown < file_kib / 4, f"file-backed RSS grew by {grown} KiB reading a {file_kib} KiB table"
    # and the rows are the permutation's: row r of the big table is row r % 3000 of the source file
    order = torch.randperm(600_000, generator=torch.Generator().manual_seed(0))[:1024]
    want = ooc.CachedTable(src.directory).batch_tensors(order % len(rec))
    assert torch.equal(batches[0].ids, want["ids"]) and torch.equal(batches[0].y, want["y"])


def test_sharded_loader_reads_each_rank_s_rows_of_the_cache(csv, tmp_path, monkeypatch):
    # Under torchrun each rank reads its own rows of every global batch from the cache, never the whole table,
    # and gets exactly the rows it would get from the in-memory table.
    from fgraph.train.distributed import ShardedLoader
    mem, enc, out = _both(csv, tmp_path)
    d, m = out["data"]["train"], enc.transform(mem.train)
    monkeypatch.setattr(type(d), "tensors", lambda self: pytest.fail("a rank loaded the whole cached table"))
    for split, shuffle in (("batches", True), ("batches", False), ("rows", False)):
        for rank in range(3):
            a = list(ShardedLoader(m, 256, shuffle=shuffle, seed=5, rank=rank, world=3, split=split))
            b = list(ShardedLoader(d, 256, shuffle=shuffle, seed=5, rank=rank, world=3, split=split))
            assert len(a) == len(b) > 0
            for x, y in zip(a, b):
                assert x.global_rows == y.global_rows
                _equal({"ids": x.ids, "values": x.values, "bags": x.bags, "y": x.y},
                       {"ids": y.ids, "values": y.values, "bags": y.bags, "y": y.y})
