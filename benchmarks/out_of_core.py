"""Peak memory and throughput of ``fgraph train --data FILE`` on files larger than memory (the out-of-core path).

Generates a Criteo-shaped CSV per size (39 fields: I1-I13 integer counts, C1-C26 8-hex-digit hashed
categories, and ``label``), streamed in blocks (never the whole table in memory), then runs
``fgraph train --data FILE --model fm --epochs 1`` in a subprocess per size and records the child's peak RSS
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``) and the training throughput (rows per second of the
epoch, from the run's history).

The value distributions mimic ``shared/datasets/criteo_sample`` (the first 10,000 rows of Criteo's
``train.txt``): per column its share of missing cells and a Zipf-like frequency skew (the top value holds
the share it holds in the sample); vocabularies are capped (``VOCAB``) so that they stop growing with the
row count, as a real day of Criteo does past a few million rows once rare values are cut by min_count.

    python benchmarks/out_of_core.py --rows 2000000 10000000 [--dir /tmp/fgraph-ooc] [--keep] [--auto] [--loader]

Every size takes the out-of-core path (``FGRAPH_OUT_OF_CORE_BYTES=0``): the 2M-row file is about 0.46 GiB,
below the 1 GiB from which ``fgraph train`` switches by itself, and a 2M run read into memory is not the
baseline the target compares with (measured: 2,177 MiB peak in memory). ``--auto`` leaves the choice to
the size threshold. ``--table FILE`` appends the rows as Markdown. ``--loader`` then times shuffled
batches of 4096 from each size's encoded table, read with ``pread`` (what training uses) and through a
memory map, interleaved in one process (:func:`loader_timing`).

Target: peak RSS at 10M rows within 1.3x of that at 2M (memory grows with the vocabulary, not the rows).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

#: (missing share, distinct values in the 10k-row sample, top value's share) per column, from the sample.
INTEGER_COLUMNS = [(0.45, 76, 0.48), (0.0, 883, 0.18), (0.20, 310, 0.15), (0.20, 77, 0.15), (0.05, 5219, 0.02),
                   (0.25, 825, 0.06), (0.05, 250, 0.25), (0.0, 65, 0.12), (0.05, 847, 0.04), (0.45, 6, 0.50),
                   (0.05, 55, 0.36), (0.77, 26, 0.74), (0.20, 126, 0.14)]
CATEGORY_COLUMNS = [(0.0, 175, 0.50), (0.0, 386, 0.12), (0.04, 5520, 0.05), (0.04, 4032, 0.08), (0.0, 56, 0.67),
                    (0.13, 7, 0.53), (0.0, 3184, 0.01), (0.0, 93, 0.59), (0.0, 3, 0.89), (0.0, 2986, 0.28),
                    (0.0, 2084, 0.02), (0.04, 5283, 0.05), (0.0, 1725, 0.02), (0.0, 24, 0.36), (0.0, 2035, 0.02),
                    (0.04, 4723, 0.05), (0.0, 9, 0.43), (0.0, 1149, 0.05), (0.45, 546, 0.60), (0.45, 3, 0.36),
                    (0.04, 5036, 0.05), (0.82, 7, 0.53), (0.0, 12, 0.45), (0.04, 2524, 0.08), (0.45, 39, 0.33),
                    (0.45, 1938, 0.08)]
#: A column with n distinct values in the 10k sample gets min(VOCAB, 20 * n) values in all (long tails).
VOCAB = 200_000
POSITIVE_RATE = 0.218
BLOCK = 100_000


def _zipf_cdf(size: int, top: float) -> np.ndarray:
    """A Zipf(s) cdf over ``size`` ranks whose first rank has about share ``top`` (s found by bisection)."""
    ranks = np.arange(1, size + 1, dtype=np.float64)
    lo, hi = 0.01, 4.0
    for _ in range(40):
        s = (lo + hi) / 2
        p = ranks ** -s
        if p[0] / p.sum() > top:
            hi = s
        else:
            lo = s
    p = ranks ** -((lo + hi) / 2)
    return np.cumsum(p / p.sum())


def write_criteo_like(path, rows: int, seed: int = 0) -> Path:
    """Write a Criteo-shaped CSV of ``rows`` rows (label, I1..I13, C1..C26), block by block."""
    rng = np.random.default_rng(seed)
    path = Path(path)
    specs = [("I", *c) for c in INTEGER_COLUMNS] + [("C", *c) for c in CATEGORY_COLUMNS]
    cdfs = [_zipf_cdf(min(VOCAB, 20 * n), top) for _, _, n, top in specs]
    hexes = [np.array([f"{(hash((k, v)) & 0xFFFFFFFF):08x}" for v in range(len(cdf))], dtype=object)
             if kind == "C" else None for k, ((kind, *_), cdf) in enumerate(zip(specs, cdfs))]
    header = ["label"] + [f"I{i + 1}" for i in range(13)] + [f"C{i + 1}" for i in range(26)]
    with open(path, "w", newline="") as fh:
        fh.write(",".join(header) + "\n")
        for start in range(0, rows, BLOCK):
            b = min(BLOCK, rows - start)
            cols = []
            logit = np.zeros(b)
            for k, ((kind, miss, _n, _top), cdf) in enumerate(zip(specs, cdfs)):
                rank = np.minimum(np.searchsorted(cdf, rng.random(b)), len(cdf) - 1)
                logit += np.where(rank % 7 == k % 7, 0.15, -0.05) * (k < 20)
                cells = (rank.astype(str).astype(object) if kind == "I" else hexes[k][rank])
                cells[rng.random(b) < miss] = ""
                cols.append(cells)
            p = 1 / (1 + np.exp(-(logit - logit.mean() + np.log(POSITIVE_RATE / (1 - POSITIVE_RATE)))))
            label = (rng.random(b) < p).astype(int).astype(str).astype(object)
            table = np.column_stack([label] + cols)
            fh.write("\n".join(",".join(r) for r in table.tolist()) + "\n")
    return path


def run_size(rows: int, workdir: Path, keep: bool, force: bool = True, loader: bool = False) -> dict:
    data = workdir / f"criteo-{rows}.csv"
    if not data.exists():
        t = time.time()
        write_criteo_like(data, rows)
        print(f"wrote {data} ({data.stat().st_size / 2**30:.2f} GiB) in {time.time() - t:.0f}s", flush=True)
    out = workdir / f"run-{rows}"
    cmd = [sys.executable, "-m", "fgraph", "train", "--data", str(data), "--label", "label", "--model", "fm",
           "--epochs", "1", "--out", str(out), "--overwrite", "--no-progress"]
    repo = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    if force:   # files under 1 GiB take the out-of-core path too
        env["FGRAPH_OUT_OF_CORE_BYTES"] = "0"
    else:
        env.pop("FGRAPH_OUT_OF_CORE_BYTES", None)
    t = time.time()
    proc, phases = _run_sampled(cmd, env)
    wall = time.time() - t
    # ru_maxrss of RUSAGE_CHILDREN is the largest peak of any child so far: one size per process (see main).
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        raise SystemExit(f"fgraph train failed for {rows} rows")
    history = _history(out)
    result = {"rows": rows, "file_gib": round(data.stat().st_size / 2**30, 3), "peak_rss_mib": round(peak_kib / 1024),
              "wall_s": round(wall, 1), **history, "peak_by_phase": phases,
              "out_of_core_line": next((ln for ln in proc.stdout.splitlines() if "out-of-core" in ln), None)}
    if loader:
        result.update(loader_timing(workdir, rows))
    if not keep:
        data.unlink()
    return result


def loader_timing(workdir: Path, rows: int, batch: int = 4096, batches: int = 25, rounds: int = 5) -> dict:
    """Milliseconds per shuffled batch of the size's encoded table, read with ``pread`` (the default) and
    through a memory map, interleaved round by round in this one process (medians over the rounds)."""
    import statistics

    import torch

    from fgraph.data import FieldLoader
    from fgraph.data.out_of_core import CachedTable

    tables = [d for d in (workdir / ".fgraph-cache").glob("table-*")
              if (d / "COMPLETE").is_file() and json.loads((d / "meta.json").read_text())["rows"] == rows]
    if not tables:
        return {}
    torch.set_num_threads(1)
    times: dict[str, list[float]] = {"pread": [], "mmap": []}
    for r in range(rounds):
        for reader in times:
            loader = iter(FieldLoader(CachedTable(tables[0], reader=reader), batch, shuffle=True, seed=r))
            t = time.perf_counter()
            for _ in range(batches):
                next(loader)
            times[reader].append((time.perf_counter() - t) / batches * 1000)
    return {f"{k}_ms_per_batch": round(statistics.median(v), 2) for k, v in times.items()}


def _rss(pid: int) -> dict:
    """The child's resident memory now, MiB: total, anonymous and file-backed (memory-mapped pages)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    out[key] = int(line.split()[1]) // 1024
    except OSError:
        pass
    return out


def _run_sampled(cmd, env, every: float = 0.2):
    """Run ``cmd``, sampling its RSS every ``every`` s; returns (CompletedProcess, the largest sample per phase).
    A phase is named by the last line the run printed, cut to 48 characters (Linux only)."""
    import threading

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    phase = ["start"]

    def read():
        for line in proc.stdout:
            lines.append(line)
            if line.strip():
                phase[0] = line.split("|")[0].strip()[:48]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    peaks: dict[str, dict] = {}
    while proc.poll() is None:
        now = _rss(proc.pid)
        if now and now.get("VmRSS", 0) > peaks.get(phase[0], {}).get("VmRSS", -1):
            peaks[phase[0]] = now
        time.sleep(every)
    reader.join()
    err = proc.stderr.read()
    return subprocess.CompletedProcess(cmd, proc.returncode, "".join(lines), err), peaks


def _history(run: Path) -> dict:
    for name in ("history.json", "metrics.json"):
        p = run / name
        if p.is_file():
            d = json.loads(p.read_text())
            if name == "history.json" and isinstance(d, list) and d:
                rec = d[-1]
                return {"epoch_s": round(rec.get("epoch_seconds", 0), 1),
                        "train_rows_per_s": round(rec.get("samples_per_s", 0)), "valid_auc": rec.get("valid_auc")}
            if name == "metrics.json":
                return {"test": d.get("test")}
    return {}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[2_000_000, 10_000_000])
    ap.add_argument("--dir", default="/tmp/fgraph-ooc")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--auto", action="store_true",
                    help="let the 1 GiB threshold choose the path (default: every size out-of-core)")
    ap.add_argument("--table", help="append the results to this Markdown file")
    ap.add_argument("--loader", action="store_true",
                    help="after each run, time shuffled batches of its table read with pread and with a memory map")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)   # internal: one size in this process
    args = ap.parse_args(argv)
    workdir = Path(args.dir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.one is not None:
        print(json.dumps(run_size(args.one, workdir, args.keep, not args.auto, args.loader)))
        return
    results = []
    for rows in args.rows:
        # A fresh process per size, so that RUSAGE_CHILDREN's maximum is this size's alone.
        cmd = [sys.executable, __file__, "--one", str(rows), "--dir", str(workdir)] + (["--keep"] if args.keep else []) + \
            (["--auto"] if args.auto else []) + (["--loader"] if args.loader else [])
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stdout, out.stderr, sep="\n")
            raise SystemExit(out.returncode)
        print(out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "", flush=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    ratio = results[-1]["peak_rss_mib"] / results[0]["peak_rss_mib"] if len(results) >= 2 else None
    if ratio is not None:
        print(f"peak RSS {results[-1]['rows']:,} rows / {results[0]['rows']:,} rows: {ratio:.2f}x (target <= 1.3x)")
    if args.table:
        def phase_peak(r, key):
            return max((p.get(key, 0) for p in r["peak_by_phase"].values()), default=0)

        lines = ["| rows | file GiB | path | peak RSS MiB | peak RssAnon MiB | peak RssFile MiB | wall s | epoch s "
                 "| train rows/s | ms/batch pread | ms/batch mmap |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['rows']:,} | {r['file_gib']} | {'out-of-core' if r['out_of_core_line'] else 'in memory'} | "
                  f"{r['peak_rss_mib']:,} | {phase_peak(r, 'RssAnon'):,} | {phase_peak(r, 'RssFile'):,} | {r['wall_s']} | "
                  f"{r.get('epoch_s')} | {r.get('train_rows_per_s', 0):,} | {r.get('pread_ms_per_batch', '')} | "
                  f"{r.get('mmap_ms_per_batch', '')} |" for r in results]
        if ratio is not None:
            lines.append(f"\nPeak RSS {results[-1]['rows']:,} / {results[0]['rows']:,} rows: {ratio:.2f}x (target <= 1.3x).")
        with open(args.table, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
