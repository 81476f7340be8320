#!/usr/bin/env python
"""The bad-input catalogue of issue 10: bad inputs and faults fed to fgraph, each sorted into one of four verdicts.

``python benchmarks/bad_inputs.py`` runs every case and prints a Markdown table and the counts:

* **clear** -- the documented error was raised: the expected :mod:`fgraph.errors` class, with a message that
  names the input (column, row, option, file, line);
* **documented** -- the input was handled the documented way and the data was left intact (checked);
* **raw** -- a raw traceback, another exception class, or an fgraph error whose message misses the names;
* **silent** -- the input was accepted although the data was changed, lost, or an error was due.

Command-line cases run ``fgraph.cli.main(argv)`` in this process. There, *clear* means exit status 2 and a
stderr of one ``fgraph: error: ...`` line (or argparse's ``usage:`` and ``error:`` lines) that names the
input and holds no traceback; an exception escaping ``main()`` is *raw*, exit status 0 is *silent*.

Every case runs in its own temporary directory (the working directory during the case), on the built-in
``synthetic`` data set or on tiny fake files in the layout the builders expect, with tiny settings, so the
whole catalogue takes a minute or two on two cores.

Options: ``--only PATTERN`` (a substring or glob of the case id or class; repeatable), ``--out FILE`` (also
write the report there), ``--json FILE`` (the results as JSON), ``--list`` (list the cases), ``--strict``
(exit status 1 when any case is raw or silent; otherwise the exit status is always 0: this is a report).

A case is a function of its temporary directory. What the harness expects of it is stated next to it:
``error=`` (an exception class) and ``names=`` (substrings the message must hold; a tuple inside ``names``
lists alternatives), or a behaviour check (the function returns ``True``/``False``, or ``(bool, detail)``),
or ``warn=`` (a warning class whose message holds ``names``). ``or_behaviour=True`` on an error case accepts
either the error or, when no error is raised, a passing behaviour check. ``intact=`` is a check run after the
case whatever happened; when it fails the verdict is *silent*: the data was changed or lost.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fnmatch
import gzip
import hashlib
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

import fgraph.api as fg
from fgraph import errors as E
from fgraph.cli import main as cli_main
from fgraph.data import EncodedData, Field, FieldEncoder, Schema, categorical, multi_valued, numeric
from fgraph.data.datasets import load_dataset, synthetic
from fgraph.models import CTRModel, build_model
from fgraph.nn import FieldLinear
from fgraph.train import Trainer, TrainConfig, load_checkpoint, seed_everything

VERDICTS = ("clear", "documented", "raw", "silent")


# ==========================================================================================================
# The harness
# ==========================================================================================================

@dataclasses.dataclass
class Case:
    """One bad input and what fgraph is documented to do with it (see the module docstring)."""

    id: str
    cls: str
    input: str
    run: Callable[[Path], Any]
    error: type | None = None
    names: tuple = ()
    warn: type | None = None
    or_behaviour: bool = False
    intact: Callable[[Path], Any] | None = None
    expected: str = ""
    timeout: int = 60
    skip: str | None = None

    def expectation(self) -> str:
        if self.expected:
            return self.expected
        shown = ", ".join(" or ".join(repr(a) for a in (n if isinstance(n, tuple) else (n,))) for n in self.names)
        if self.warn is not None:
            return f"{self.warn.__name__} naming {shown}"
        if self.error is not None:
            what = "exit 2, one line" if getattr(self.run, "_cli", False) else self.error.__name__
            return f"{what} naming {shown}" if shown else what
        return "documented behaviour"


@dataclasses.dataclass
class Result:
    case: Case
    verdict: str
    message: str
    seconds: float


@dataclasses.dataclass
class CliResult:
    """What ``fgraph.cli.main`` did: exit status, captured output, and an exception that escaped it."""

    code: int
    out: str
    err: str
    escaped: BaseException | None = None


class Unexpected(Exception):
    """Raised by a behaviour case when fgraph refused or failed on an input it should have taken."""


class CaseTimeout(Exception):
    pass


CASES: list[Case] = []


def case(id: str, cls: str, input: str, **spec):
    """Register the decorated function as a case (``spec``: the fields of :class:`Case`)."""
    def wrap(fn):
        CASES.append(Case(id, cls, input, fn, **spec))
        return fn
    return wrap


def cli_case(id: str, cls: str, input: str, **spec):
    """A command-line case: ``error=True`` means 'exit 2 with one line naming ``names``'."""
    def wrap(fn):
        fn._cli = True
        if spec.get("error") is True:
            spec["error"] = E.FgraphError
        CASES.append(Case(id, cls, input, fn, **spec))
        return fn
    return wrap


def add(id: str, cls: str, input: str, fn: Callable[[Path], Any], **spec) -> None:
    CASES.append(Case(id, cls, input, fn, **spec))


def cli(*argv) -> CliResult:
    """Run ``fgraph <argv>`` in this process and capture what it did."""
    out, err = io.StringIO(), io.StringIO()
    escaped, code = None, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_main([str(a) for a in argv])
        except SystemExit as e:
            if e.code is None:
                code = 0
            elif isinstance(e.code, int):
                code = e.code
            else:  # SystemExit("message"): Python prints it and exits with status 1
                print(e.code, file=sys.stderr)
                code = 1
        except CaseTimeout:
            raise
        except Exception as e:  # noqa: BLE001 - a traceback escaping main() is what we are looking for
            escaped = e
            code = -1
    return CliResult(0 if code is None else int(code), out.getvalue(), err.getvalue(), escaped)


def must_succeed(res: CliResult) -> CliResult:
    """For behaviour cases: the command must have worked."""
    if res.escaped is not None:
        raise Unexpected(f"traceback from main(): {type(res.escaped).__name__}: {_text(res.escaped)}")
    if res.code != 0:
        lines = res.err.strip().splitlines() or ["(no stderr)"]
        raise Unexpected(f"refused (exit {res.code}): {lines[-1]}")
    return res


def _text(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and not isinstance(exc, E.FgraphError) and exc.args:
        return str(exc.args[0])
    return str(exc)


def _excerpt(text: str, limit: int = 220) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _missing_names(text: str, names) -> list[str]:
    missing = []
    for n in names:
        alts = n if isinstance(n, tuple) else (n,)
        if not any(a in text for a in alts):
            missing.append(" or ".join(repr(a) for a in alts))
    return missing


def _as_check(value) -> tuple[bool | None, str]:
    """A behaviour check's result as ``(ok, detail)``; ``ok`` is None when the case returned no verdict."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (bool, np.bool_)):
        return bool(value[0]), str(value[1])
    if isinstance(value, (bool, np.bool_)):
        return bool(value), ""
    if isinstance(value, str):
        return None, value
    return None, ""


@contextlib.contextmanager
def _alarm(seconds: int):
    usable = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def handler(signum, frame):
        raise CaseTimeout(f"timed out after {seconds} s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _classify_cli(case: Case, res: CliResult) -> tuple[str, str]:
    if res.escaped is not None:
        return "raw", f"traceback from main(): {type(res.escaped).__name__}: {_text(res.escaped)}"
    err = res.err.strip()
    lines = err.splitlines()
    last = lines[-1] if lines else "(no stderr)"
    if res.code == 0:
        return "silent", "exit 0: accepted without an error"
    if "Traceback" in err:
        return "raw", f"traceback on stderr: {last}"
    if res.code != 2:
        return "raw", f"exit {res.code} (not 2): {last}"
    one_line = len(lines) == 1 and lines[0].startswith("fgraph: error:")
    argparse_style = len(lines) >= 2 and lines[0].startswith("usage:") and ": error:" in lines[-1]
    if not (one_line or argparse_style):
        return "raw", f"exit 2 but stderr is not one 'fgraph: error:' line: {err}"
    missing = _missing_names(err, case.names)
    if missing:
        return "raw", f"does not name {', '.join(missing)}: {last}"
    return "clear", last


def classify(case: Case, exc: BaseException | None, value, caught, intact) -> tuple[str, str]:
    """The verdict of one case and the message shown for it."""
    if intact is not None and intact[0] is False:
        after = f" (after {type(exc).__name__}: {_text(exc)})" if exc is not None else ""
        return "silent", f"data changed: {intact[1]}{after}"
    if isinstance(value, CliResult) and exc is None:
        if value.code == 0 and case.or_behaviour:
            return "documented", "exit 0"
        return _classify_cli(case, value)
    if isinstance(exc, (Unexpected, CaseTimeout)):
        return "raw", str(exc)
    if case.error is not None:
        if exc is None:
            ok, detail = _as_check(value)
            if case.or_behaviour and ok:
                return "documented", detail or "accepted as documented"
            return "silent", "accepted without an error" + (f": {detail}" if detail else "")
        text = _text(exc)
        if isinstance(exc, case.error):
            missing = _missing_names(text, case.names)
            if not missing:
                return "clear", f"{type(exc).__name__}: {text}"
            return "raw", f"{type(exc).__name__} not naming {', '.join(missing)}: {text}"
        return "raw", f"{type(exc).__name__}: {text}"
    if exc is not None:
        return "raw", f"{type(exc).__name__}: {_text(exc)}"
    ok, detail = _as_check(value)
    if case.warn is not None:
        for w in caught:
            if issubclass(w.category, case.warn) and not _missing_names(str(w.message), case.names):
                return "documented", f"{w.category.__name__}: {w.message}"
        seen = sorted({w.category.__name__ for w in caught})
        return "silent", f"no {case.warn.__name__} naming {case.names}" + (f" (saw {seen})" if seen else "") \
            + (f"; {detail}" if detail else "")
    if ok:
        return "documented", detail or "as documented"
    return "silent", detail or "the behaviour check failed"


def run_case(case: Case) -> Result:
    """Run one case in a fresh temporary working directory and classify what happened."""
    started = time.perf_counter()
    old_cwd = os.getcwd()
    exc, value, intact = None, None, None
    with tempfile.TemporaryDirectory(prefix="fgbad-") as d:
        tmp = Path(d).resolve()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sink_out, sink_err = io.StringIO(), io.StringIO()
            try:
                os.chdir(tmp)
                with _alarm(case.timeout), contextlib.redirect_stdout(sink_out), contextlib.redirect_stderr(sink_err):
                    value = case.run(tmp)
            except (Exception, SystemExit) as e:  # noqa: BLE001 - every outcome is classified
                exc = e
            finally:
                os.chdir(old_cwd)
            if case.intact is not None:
                try:
                    with contextlib.redirect_stdout(io.StringIO()):
                        intact = _as_check(case.intact(tmp))
                except Exception as e:  # noqa: BLE001
                    intact = (False, f"the intact check could not read the data: {type(e).__name__}: {e}")
        torch.set_num_threads(1)
        verdict, message = classify(case, exc, value, caught, intact)
    return Result(case, verdict, _excerpt(message), time.perf_counter() - started)


def select(patterns: list[str] | None) -> list[Case]:
    if not patterns:
        return list(CASES)
    out = []
    for c in CASES:
        for p in patterns:
            hay = (c.id, c.cls)
            if any(p in h or fnmatch.fnmatch(h, p) for h in hay):
                out.append(c)
                break
    return out


def run_cases(cases: list[Case], progress=None) -> tuple[list[Result], list[Case]]:
    """Run ``cases`` (skipping those that cannot run here); returns the results and the skipped cases."""
    saved_env = {k: os.environ.pop(k) for k in ("FGRAPH_DEBUG", "FGRAPH_DATA_DIR") if k in os.environ}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    results, skipped = [], []
    try:
        for i, c in enumerate(cases, 1):
            if c.skip:
                skipped.append(c)
                continue
            r = run_case(c)
            results.append(r)
            if progress is not None:
                print(f"[{i:3d}/{len(cases)}] {r.verdict:<10} {c.id} ({r.seconds:.1f} s)", file=progress, flush=True)
    finally:
        os.environ.update(saved_env)
        torch.set_num_threads(threads)
    return results, skipped


def counts(results: list[Result]) -> dict[str, int]:
    return {v: sum(r.verdict == v for r in results) for v in VERDICTS}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def report(results: list[Result], skipped: list[Case], seconds: float) -> str:
    c = counts(results)
    lines = ["# fgraph bad-input catalogue (issue 10)", "",
             f"{len(results)} cases in {seconds:.0f} s: **{c['clear']} clear, {c['documented']} documented, "
             f"{c['raw']} raw, {c['silent']} silent**.", "",
             "| verdict | count |", "|---|---|"]
    lines += [f"| {v} | {c[v]} |" for v in VERDICTS]
    lines += ["", "| # | case | class | input | expected | verdict | message |", "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(results, 1):
        lines.append(f"| {i} | `{r.case.id}` | {_cell(r.case.cls)} | {_cell(r.case.input)} | "
                     f"{_cell(r.case.expectation())} | **{r.verdict}** | {_cell(r.message)} |")
    if skipped:
        lines += ["", "Not run here: " + "; ".join(f"`{s.id}` ({s.skip})" for s in skipped)]
    bad = [r for r in results if r.verdict in ("raw", "silent")]
    if bad:
        lines += ["", "## Raw or silent", ""]
        lines += [f"- `{r.case.id}` ({r.verdict}): {r.message}" for r in bad]
    return "\n".join(lines) + "\n"


DOCS_START, DOCS_END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"


def write_docs(path: Path, results: list[Result], seconds: float) -> None:
    """Replace the text between the catalogue markers of ``path`` with a table of every case: the input and
    what the user gets (the error and its message, or the documented behaviour), grouped by class."""
    c = counts(results)
    lines = [DOCS_START, "",
             f"Generated by `python benchmarks/bad_inputs.py --docs docs/errors.md` ({len(results)} cases, "
             f"{seconds:.0f} s): {c['clear']} clear, {c['documented']} documented, {c['raw']} raw, "
             f"{c['silent']} silent.", ""]
    for cls in dict.fromkeys(r.case.cls for r in results):
        lines += [f"#### {cls}", "", "| input | what the user gets | verdict |", "|---|---|---|"]
        lines += [f"| {_cell(r.case.input)} | {_cell(r.message)} | {r.verdict} |"
                  for r in results if r.case.cls == cls]
        lines.append("")
    lines.append(DOCS_END)
    text = path.read_text() if path.exists() else f"{DOCS_START}\n{DOCS_END}\n"
    if DOCS_START not in text or DOCS_END not in text:
        raise SystemExit(f"{path} has no {DOCS_START} ... {DOCS_END} markers to fill")
    head, rest = text.split(DOCS_START, 1)
    tail = rest.split(DOCS_END, 1)[1]
    path.write_text(head + "\n".join(lines) + tail)


# ==========================================================================================================
# Helpers shared by the cases
# ==========================================================================================================

SMALL = {"n_samples": 600}


def tiny_kwargs(tmp: Path, **over) -> dict:
    """``fgraph.api.train`` arguments of a run that takes a fraction of a second."""
    kw = dict(model="fm", dataset="synthetic", out=str(tmp / "run"), epochs=1, batch_size=256, embed_dim=4,
              threads=1, progress=False, dataset_options=dict(SMALL))
    kw.update(over)
    if kw["model"] == "lr" and "embed_dim" not in over:
        kw.pop("embed_dim")
    return kw


def tiny_train(tmp: Path, **over):
    return fg.train(**tiny_kwargs(tmp, **over))


def before_data(tmp: Path, **over):
    """A run on a file-based data set whose directory does not exist: a bad option must be reported before
    the data is looked for (the data error would otherwise come first)."""
    kw = dict(model="fm", dataset="criteo", data_dir=str(tmp / "no_such_data"), out=str(tmp / "run"),
              epochs=1, embed_dim=4, threads=1, progress=False)
    kw.update(over)
    return fg.train(**kw)


TINY_FLAGS = ["--epochs", "1", "--batch-size", "256", "--embed-dim", "4", "--threads", "1", "--no-progress",
              "--dataset-option", "n_samples=600"]


def cli_train(tmp: Path, *extra, out: str = "run", flags=TINY_FLAGS) -> CliResult:
    return cli("train", "--out", tmp / out, *flags, *extra)


BASE_YAML = {"epochs": "1", "batch_size": "256", "embed_dim": "4", "threads": "1", "progress": "false",
             "dataset_options": "{n_samples: 600}"}


def yaml_config(tmp: Path, name: str = "run.yaml", **raw) -> Path:
    """A YAML config of a tiny run; ``raw`` values are YAML text, written as given (``lr="1e-3"``)."""
    values = {**BASE_YAML, **raw}
    path = tmp / name
    path.write_text("".join(f"{k}: {v}\n" for k, v in values.items() if v is not None))
    return path


def digest(path: Path) -> str | None:
    path = Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def digests(folder: Path, names=("config.json", "checkpoint.pt", "metrics.json", "encoder.json")) -> dict:
    return {n: digest(Path(folder) / n) for n in names}


def encoder(fields, frame: pd.DataFrame, **kw) -> FieldEncoder:
    return FieldEncoder(Schema(tuple(fields), label="clicked"), **kw).fit(frame)


def codes(enc: FieldEncoder, frame: pd.DataFrame, k: int = 0) -> list[int]:
    return enc.transform(frame).ids[:, k].tolist()


def tiny_encoded(n: int = 600):
    d = synthetic(n_samples=n)
    enc = FieldEncoder(d.schema).fit(d.train)
    return d, enc, enc.transform(d.train), enc.transform(d.valid)


def state_of(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def finite_state(state: dict | None) -> bool:
    if state is None:
        return True
    return all(torch.isfinite(v).all() for v in state.values() if torch.is_tensor(v) and v.is_floating_point())


def py_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("FGRAPH_DEBUG",)}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def spawn_train(out: Path, model: str = "fm", epochs: int = 2000, n: int = 4000) -> subprocess.Popen:
    """A long training in another process (it is killed by the case)."""
    emb = "" if model == "lr" else "embed_dim=4, "
    code = ("import fgraph.api as fg\n"
            f"fg.train({model!r}, 'synthetic', out={str(out)!r}, epochs={epochs}, batch_size=64, {emb}"
            f"threads=1, progress=False, patience=100000, dataset_options={{'n_samples': {n}}})\n")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=py_env())


def wait_for(pred: Callable[[], bool], timeout: float = 60.0, proc: subprocess.Popen | None = None) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if pred():
                return True
        except (OSError, ValueError):
            pass
        if proc is not None and proc.poll() is not None:
            return bool(pred())
        time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


@contextlib.contextmanager
def training_in_background(out: Path, model: str = "fm"):
    """A long training into ``out`` in another process, started and past its first checkpoint; killed at
    the end of the ``with`` block. Yields the process."""
    proc = spawn_train(out, model)
    try:
        if not wait_for(lambda: (out / "checkpoint.pt").is_file(), 90, proc):
            raise Unexpected(f"the background training did not start: {proc.stderr.read().decode()[-300:]}")
        yield proc
    finally:
        stop(proc)


def history_len(path: Path) -> int:
    return len(json.loads(Path(path).read_text()))


CUDA = torch.cuda.is_available()


# -- tiny data files in the builders' layouts ------------------------------------------------------------

def criteo_rows(n: int = 40, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        ints = [str(int(rng.integers(0, 50))) for _ in range(13)]
        cats = [f"{int(rng.integers(0, 6)):08x}" for _ in range(26)]
        rows.append("\t".join([str(i % 2)] + ints + cats))
    return rows


def write_criteo(tmp: Path, body: str | bytes, name: str = "train.txt", gz: bool = False) -> Path:
    folder = tmp / "data" / "criteo_sample"
    folder.mkdir(parents=True, exist_ok=True)
    data = body.encode() if isinstance(body, str) else body
    path = folder / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def load_criteo(tmp: Path):
    return load_dataset("criteo", tmp / "data")


AVAZU_HEADER = "id,click,hour,C1,banner_pos,site_id,app_id"


def avazu_rows(n: int = 40) -> list[str]:
    return [f"{1000 + i},{i % 2},141021{i % 24:02d},100{i % 3},{i % 2},site{i % 5},app{i % 4}" for i in range(n)]


def write_avazu(tmp: Path, body: str | bytes, name: str = "train.csv", gz: bool = False) -> Path:
    folder = tmp / "data" / "avazu_sample"
    folder.mkdir(parents=True, exist_ok=True)
    data = body.encode() if isinstance(body, str) else body
    path = folder / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


FRAPPE_RAW = ("user\titem\tcnt\tdaytime\tweekday\tisweekend\thomework\tcost\tweather\tcountry\tcity\n"
              "0\t0\t3\tmorning\tsunday\tweekend\tunknown\tfree\tsunny\tSpain\t0\n"
              "1\t1\t1\tevening\tmonday\tworkday\thome\tpaid\trainy\tIndia\t5\n")
FRAPPE_ROW0 = "1 0:1 2:1 4:1 6:1 8:1 10:1 12:1 14:1 16:1 18:1"
FRAPPE_ROW1 = "-1 1:1 2:1 5:1 7:1 9:1 11:1 13:1 15:1 17:1 19:1"


def write_frappe(tmp: Path, raw: bytes | None = None, valid: bytes | None = None, test: bytes | None = None) -> Path:
    """The tiny Frappe layout of tests/test_datasets.py; each file's bytes can be replaced."""
    folder = tmp / "data" / "frappe"
    (folder / "raw").mkdir(parents=True)
    (folder / "raw" / "frappe.csv.gz").write_bytes(gzip.compress(FRAPPE_RAW.encode()) if raw is None else raw)
    (folder / "frappe.validation.libfm.gz").write_bytes(
        gzip.compress((FRAPPE_ROW0 + "\r\n").encode()) if valid is None else valid)
    (folder / "frappe.test.libfm.gz").write_bytes(
        gzip.compress((FRAPPE_ROW1 + "\r\n").encode()) if test is None else test)
    return folder


# ==========================================================================================================
# 1. Large integer ids: exact values, distinct codes, the exact decimal string in the vocabulary
# ==========================================================================================================

def _large_ids(values, dtype=None):
    def run(tmp):
        frame = pd.DataFrame({"user_id": pd.Series(values, dtype=dtype)})
        enc = encoder([categorical("user_id")], frame)
        ids = codes(enc, frame)
        vocab = enc.vocabularies_["user_id"]
        want = [str(int(v)) for v in values]
        ok = len(set(ids)) == len(set(want)) and all(w in vocab for w in want)
        return ok, f"values {want} -> ids {ids}, vocabulary {vocab}"
    return run


LARGE = "large integer ids"
add("large-int-2^53", LARGE, "int64 ids 2**53 and 2**53+1", _large_ids([2 ** 53, 2 ** 53 + 1], "int64"),
    expected="two distinct ids, exact strings in the vocabulary")
add("large-int-2^62", LARGE, "int64 ids 2**62 and 2**62+1", _large_ids([2 ** 62, 2 ** 62 + 1], "int64"),
    expected="two distinct ids, exact strings (not '4.6e+18')")
add("large-int-int64-extremes", LARGE, "int64 ids 2**63-1 and -2**63",
    _large_ids([2 ** 63 - 1, -(2 ** 63)], "int64"), expected="two distinct ids, exact strings")
add("large-int-uint64", LARGE, "uint64 hashed ids 2**64-1 and 2**64-2",
    _large_ids([2 ** 64 - 1, 2 ** 64 - 2], "uint64"), expected="two distinct ids, exact strings")
add("large-int-nullable", LARGE, "nullable Int64 ids 2**53+1, 2**53+3 and <NA>",
    lambda tmp: _nullable_large(), expected="exact strings; <NA> is the missing id 0")
add("large-int-python-object", LARGE, "object column of Python ints 2**70 and 2**70+1",
    _large_ids([2 ** 70, 2 ** 70 + 1], object), expected="two distinct ids, exact strings")


def _nullable_large():
    frame = pd.DataFrame({"user_id": pd.array([2 ** 53 + 1, 2 ** 53 + 3, None], dtype="Int64")})
    enc = encoder([categorical("user_id")], frame)
    ids = codes(enc, frame)
    vocab = enc.vocabularies_["user_id"]
    ok = ids[2] == 0 and len({ids[0], ids[1]}) == 2 and {"9007199254740993", "9007199254740995"} <= set(vocab)
    return ok, f"ids {ids}, vocabulary {vocab}"


@case("large-int-as-string-at-transform", LARGE, "fit int64 2**53+1, transform the string '9007199254740993'",
      expected="the string maps to the same id as the int")
def _(tmp):
    fit = pd.DataFrame({"user_id": pd.Series([2 ** 53 + 1, 2 ** 53], dtype="int64")})
    enc = encoder([categorical("user_id")], fit)
    a = codes(enc, fit)
    b = codes(enc, pd.DataFrame({"user_id": ["9007199254740993", "9007199254740992"]}))
    return a == b and min(b) >= 3, f"ints -> {a}, strings -> {b}"


@case("large-int-multi-valued", LARGE, "multi-valued field of int tokens [2**53, 2**53+1]",
      expected="two distinct token ids")
def _(tmp):
    frame = pd.DataFrame({"tags": [[2 ** 53, 2 ** 53 + 1], [2 ** 53]]})
    enc = encoder([multi_valued("tags")], frame)
    bag = enc.transform(frame).bags[0, 0].tolist()
    vocab = enc.vocabularies_["tags"]
    ok = len({t for t in bag if t >= 0}) == 2 and {"9007199254740992", "9007199254740993"} <= set(vocab)
    return ok, f"bag {bag}, vocabulary {vocab}"


# ==========================================================================================================
# 2. ±inf in numeric columns: DataError at fit and at transform, naming the column and the row
# ==========================================================================================================

INF = "±inf in numeric columns"


def _encoded_text(data) -> str:
    values = "" if data.values is None else f", values {data.values[:, 0].tolist()}"
    return f"ids {data.ids[:, 0].tolist()}{values}"


def _inf_at_fit(treatment: str, value: float):
    def run(tmp):
        vals = [1.0, 2.0, 3.0, value, 5.0, 6.0]
        frame = pd.DataFrame({"price": vals})
        enc = encoder([numeric("price", treatment, buckets=(4,))], frame)
        data = enc.transform(frame)
        return _encoded_text(data)
    return run


def _inf_at_transform(treatment: str, value: float):
    def run(tmp):
        enc = encoder([numeric("price", treatment, buckets=(4,))], pd.DataFrame({"price": [1.0, 2.0, 3.0, 4.0]}))
        data = enc.transform(pd.DataFrame({"price": [1.0, 2.0, value]}))
        return _encoded_text(data)
    return run


for _t in ("scale", "bucket", "log"):
    for _v, _s in ((math.inf, "+inf"), (-math.inf, "-inf")):
        add(f"inf-fit-{_t}{_s}", INF, f"`numeric('price', '{_t}')`, {_s} at row 3, fit", _inf_at_fit(_t, _v),
            error=E.DataError, names=("'price'", "row 3", "inf"))
    add(f"inf-transform-{_t}+inf", INF, f"`numeric('price', '{_t}')` fitted finite, +inf at row 2 at transform",
        _inf_at_transform(_t, math.inf), error=E.DataError, names=("'price'", "row 2", "inf"))
add("inf-transform-log-inf", INF, "`numeric('price', 'log')` fitted finite, -inf at row 2 at transform",
    _inf_at_transform("log", -math.inf), error=E.DataError, names=("'price'", "row 2", "inf"))


@case("inf-as-string", INF, "numeric column of strings with 'inf' at row 1 (as read from a text file)",
      error=E.DataError, names=("'price'", "row 1", "inf"))
def _(tmp):
    frame = pd.DataFrame({"price": ["1.5", "inf", "2"]})
    enc = encoder([numeric("price")], frame)
    return f"values {enc.transform(frame).values[:, 0].tolist()}"


@case("inf-float32", INF, "float32 column with +inf at row 0, scale", error=E.DataError,
      names=("'price'", "row 0", "inf"))
def _(tmp):
    frame = pd.DataFrame({"price": np.array([np.inf, 1, 2], dtype=np.float32)})
    return f"scaler {encoder([numeric('price')], frame).scalers_['price']}"


@case("huge-finite-scale", INF, "scale column holding 1e308 twice (the mean overflows to inf)",
      error=E.DataError, names=("'price'",), or_behaviour=True,
      expected="DataError naming 'price', or finite scaled values")
def _(tmp):
    frame = pd.DataFrame({"price": [1e308, 1e308, 1.0]})
    enc = encoder([numeric("price")], frame)
    vals = enc.transform(frame).values[:, 0]
    return bool(torch.isfinite(vals).all()), f"scaler {enc.scalers_['price']}, values {vals.tolist()}"


@case("nan-numeric-is-missing", INF, "NaN in scale, bucket and log columns",
      expected="NaN is the missing id, other rows unchanged")
def _(tmp):
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [1.0, np.nan, 3.0], "c": [1.0, np.nan, 30.0]})
    enc = encoder([numeric("a"), numeric("b", "bucket", buckets=(2,)), numeric("c", "log")], frame)
    ids = enc.transform(frame).ids
    ok = ids[1].tolist() == [0, 0, 0] and bool((ids[[0, 2]] > 0).all())
    return ok, f"ids {ids.tolist()}"


# ==========================================================================================================
# 3. Categories whose type changes; the canonical form; lists in a categorical column
# ==========================================================================================================

CAT = "category type change"


def _same_ids(fit_vals, other_vals, fit_dtype=None, other_dtype=None):
    def run(tmp):
        fit = pd.DataFrame({"city": pd.Series(fit_vals, dtype=fit_dtype)})
        enc = encoder([categorical("city")], fit)
        a = codes(enc, fit)
        b = codes(enc, pd.DataFrame({"city": pd.Series(other_vals, dtype=other_dtype)}))
        return a == b and min(b) >= 3, f"fitted -> {a}, given -> {b}"
    return run


add("canon-str-then-int", CAT, "fit strings '1','2','3', transform ints 1, 2, 3",
    _same_ids(["1", "2", "3"], [1, 2, 3]), expected="same ids (one canonical form)")
add("canon-float-then-str", CAT, "fit floats 1.0, 2.0, transform strings '1.0', '2.0'",
    _same_ids([1.0, 2.0], ["1.0", "2.0"]), expected="same ids")
add("canon-int-then-float", CAT, "fit ints 1, 2, transform floats 1.0, 2.0",
    _same_ids([1, 2], [1.0, 2.0]), expected="same ids")
add("canon-str-float-then-int", CAT, "fit strings '1.0', '2.0', transform ints 1, 2",
    _same_ids(["1.0", "2.0"], [1, 2]), expected="same ids")
add("canon-category-dtype", CAT, "fit a category dtype of ints, transform strings",
    _same_ids([5, 6, 5], ["5", "6", "5"], fit_dtype="category"), expected="same ids")
add("canon-nullable-vs-float", CAT, "fit Int64 with <NA>, transform float64 with NaN",
    lambda tmp: _nullable_vs_float(), expected="same ids, NaN/NA missing")
add("canon-whitespace", CAT, "fit 'paris', transform ' paris '", _same_ids(["paris", "rome"], [" paris ", "rome "]),
    expected="same ids (values are stripped)")
add("canon-mixed-object", CAT, "one object column holding 7, '7' and 7.0",
    lambda tmp: _mixed_object(), expected="one vocabulary entry '7'")


def _nullable_vs_float():
    fit = pd.DataFrame({"city": pd.array([1, 2, None], dtype="Int64")})
    enc = encoder([categorical("city")], fit)
    a, b = codes(enc, fit), codes(enc, pd.DataFrame({"city": [1.0, 2.0, np.nan]}))
    return a == b and a[2] == 0, f"Int64 -> {a}, float -> {b}"


def _mixed_object():
    frame = pd.DataFrame({"city": pd.Series([7, "7", 7.0], dtype=object)})
    enc = encoder([categorical("city")], frame)
    ids = codes(enc, frame)
    vocab = enc.vocabularies_["city"]
    return vocab == ["7"] and len(set(ids)) == 1, f"vocabulary {vocab}, ids {ids}"


@case("unknown-all-after-type-change", CAT, "fit strings 'v0'..'v4', transform the integer codes 0..4",
      warn=UserWarning, names=("city",))
def _(tmp):
    enc = encoder([categorical("city")], pd.DataFrame({"city": [f"v{i % 5}" for i in range(50)]}))
    ids = codes(enc, pd.DataFrame({"city": [i % 5 for i in range(50)]}))
    return f"{sum(i == 1 for i in ids)} of {len(ids)} rows unknown"


@case("unknown-majority", CAT, "transform of 40 rows, 60% of them values never fitted", warn=UserWarning,
      names=("city",))
def _(tmp):
    enc = encoder([categorical("city")], pd.DataFrame({"city": ["a", "b"] * 20}))
    ids = codes(enc, pd.DataFrame({"city": ["a"] * 16 + ["zz"] * 24}))
    return f"{sum(i == 1 for i in ids)} of 40 rows unknown"


@case("unknown-few-no-warning", CAT, "transform of 40 rows, 1 in 10 a new value",
      expected="the unknown id 1 for those rows, no warning")
def _(tmp):
    enc = encoder([categorical("city")], pd.DataFrame({"city": ["a", "b"] * 20}))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ids = codes(enc, pd.DataFrame({"city": ["a"] * 36 + ["zz"] * 4}))
    mine = [w for w in seen if "city" in str(w.message)]
    return ids[-1] == 1 and not mine, f"ids {ids}, warnings {[str(w.message) for w in mine]}"


def _cell_at_fit(cell, where="fit"):
    def run(tmp):
        vals = ["x", "y", "z", "x"]
        if where == "fit":
            frame = pd.DataFrame({"city": pd.Series(vals[:2] + [cell] + vals[3:], dtype=object)})
            enc = encoder([categorical("city")], frame)
            return f"vocabulary {enc.vocabularies_['city']}"
        enc = encoder([categorical("city")], pd.DataFrame({"city": vals}))
        ids = codes(enc, pd.DataFrame({"city": pd.Series(["x", cell, "y"], dtype=object)}))
        return f"ids {ids}"
    return run


add("list-in-categorical-fit", CAT, "Python list ['x'] in a categorical column at fit", _cell_at_fit(["x"]),
    error=E.DataError, names=("'city'",))
add("list-in-categorical-transform", CAT, "Python list ['x'] in a categorical column at transform",
    _cell_at_fit(["x"], "transform"), error=E.DataError, names=("'city'",))
add("tuple-in-categorical", CAT, "tuple ('x', 'y') in a categorical column", _cell_at_fit(("x", "y")),
    error=E.DataError, names=("'city'",))
add("dict-in-categorical", CAT, "dict {'a': 1} in a categorical column", _cell_at_fit({"a": 1}),
    error=E.DataError, names=("'city'",))
add("ndarray-in-categorical", CAT, "numpy array in a categorical column", _cell_at_fit(np.array([1, 2])),
    error=E.DataError, names=("'city'",))
add("set-in-categorical", CAT, "set {'x'} in a categorical column", _cell_at_fit({"x"}),
    error=E.DataError, names=("'city'",))


@case("multi-str-vs-list", CAT, "multi-valued field fitted as '1|2' strings, given as int lists [1, 2]",
      expected="same token ids")
def _(tmp):
    fit = pd.DataFrame({"tags": ["1|2", "2|3"]})
    enc = encoder([multi_valued("tags")], fit)
    a = enc.transform(fit).bags.tolist()
    b = enc.transform(pd.DataFrame({"tags": [[1, 2], [2, 3]]})).bags.tolist()
    return a == b, f"strings -> {a}, lists -> {b}"


@case("multi-nested-list", CAT, "multi-valued field with a nested list [['a', 'b'], 'c']", error=E.DataError,
      names=("'tags'",))
def _(tmp):
    frame = pd.DataFrame({"tags": pd.Series([[["a", "b"], "c"], ["c"]], dtype=object)})
    return f"vocabulary {encoder([multi_valued('tags')], frame).vocabularies_['tags']}"


@case("multi-max-tokens", CAT, "multi-valued field with 5 tokens and max_tokens=3",
      expected="the first 3 tokens kept (documented)")
def _(tmp):
    frame = pd.DataFrame({"tags": ["a|b|c|d|e"]})
    enc = encoder([multi_valued("tags", max_tokens=3)], frame)
    bag = enc.transform(frame).bags[0, 0].tolist()
    kept = [enc.value_of("tags", i) for i in bag]
    return kept == ["a", "b", "c"], f"kept {kept}"


@case("missing-markers", CAT, "None, NaN, '' and '  ' in a categorical column",
      expected="all four are the missing id 0")
def _(tmp):
    frame = pd.DataFrame({"city": pd.Series(["a", None, np.nan, "", "  ", "b"], dtype=object)})
    ids = codes(encoder([categorical("city")], frame), frame)
    return ids[1:5] == [0, 0, 0, 0] and min(ids[0], ids[5]) >= 3, f"ids {ids}"


@case("rare-values", CAT, "min_count=2: a value seen once", expected="the rare id 2")
def _(tmp):
    frame = pd.DataFrame({"city": ["a", "a", "b"]})
    enc = encoder([categorical("city")], frame, min_count=2)
    ids = codes(enc, frame)
    return ids == [3, 3, 2] and enc.rare_values_["city"] == ["b"], f"ids {ids}"


@case("extra-and-reordered-columns", CAT, "transform a frame with extra columns in another order",
      expected="same ids; extra columns ignored")
def _(tmp):
    fit = pd.DataFrame({"a": ["x", "y"], "b": ["p", "q"]})
    enc = encoder([categorical("a"), categorical("b")], fit)
    other = pd.DataFrame({"zzz": [1, 2], "b": ["p", "q"], "a": ["x", "y"]})
    return enc.transform(fit).ids.tolist() == enc.transform(other).ids.tolist(), "ids compared"


@case("unicode-names-round-trip", CAT, "non-ASCII column name and values, encoder save/load",
      expected="same ids after save and load")
def _(tmp):
    frame = pd.DataFrame({"ville naïve 都市": ["Zürich", "東京", "Zürich"]})
    enc = encoder([categorical("ville naïve 都市")], frame)
    enc.save(tmp / "enc.json")
    back = FieldEncoder.load(tmp / "enc.json")
    return codes(enc, frame) == codes(back, frame), f"ids {codes(back, frame)}"


# ==========================================================================================================
# 4. Field options: per-field min_count and the other numbers of a Field
# ==========================================================================================================

FIELD = "per-field options"


def _field_fit(make_field, frame=None):
    def run(tmp):
        f = make_field()
        data = frame if frame is not None else pd.DataFrame({"city": ["a", "a", "b", "c", "c"]})
        enc = encoder([f], data)
        return f"accepted; rare values {enc.rare_values_.get(f.name)}"
    return run


add("field-min-count-1.5", FIELD, "`categorical('city', min_count=1.5)`",
    _field_fit(lambda: categorical("city", min_count=1.5)), error=E.FgraphError, names=("min_count", "1.5"))
add("field-min-count-1.9", FIELD, "`categorical('city', min_count=1.9)`",
    _field_fit(lambda: categorical("city", min_count=1.9)), error=E.FgraphError, names=("min_count", "1.9"))
add("field-min-count-0", FIELD, "`categorical('city', min_count=0)`",
    _field_fit(lambda: categorical("city", min_count=0)), error=E.FgraphError, names=("min_count", "'city'"))
add("field-min-count-bool", FIELD, "`categorical('city', min_count=True)`",
    _field_fit(lambda: categorical("city", min_count=True)), error=E.FgraphError, names=("min_count",))
add("encoder-min-count-1.5", FIELD, "`FieldEncoder(schema, min_count=1.5)`",
    lambda tmp: encoder([categorical("city")], pd.DataFrame({"city": ["a"]}), min_count=1.5),
    error=E.FgraphError, names=("min_count", "1.5"))
add("field-buckets-2.5", FIELD, "`numeric('price', 'bucket', buckets=(2.5,))` (truncated to 2?)",
    _field_fit(lambda: numeric("price", "bucket", buckets=(2.5,)), pd.DataFrame({"price": [1.0, 2.0, 3.0]})),
    error=E.FgraphError, names=("buckets", "2.5"))
add("field-buckets-0", FIELD, "`numeric('price', 'bucket', buckets=(0,))`",
    _field_fit(lambda: numeric("price", "bucket", buckets=(0,)), pd.DataFrame({"price": [1.0, 2.0]})),
    error=E.FgraphError, names=("buckets", "'price'"))
add("field-max-tokens-2.5", FIELD, "`multi_valued('tags', max_tokens=2.5)`",
    _field_fit(lambda: multi_valued("tags", max_tokens=2.5), pd.DataFrame({"tags": ["a|b|c"]})),
    error=E.FgraphError, names=("max_tokens", "2.5"))
add("field-bad-kind", FIELD, "`Field('city', kind='numerical')`",
    lambda tmp: Field("city", kind="numerical"),
    error=E.FgraphError, names=("'city'", "numerical"))
add("field-bad-treatment", FIELD, "`numeric('price', 'Log')`", lambda tmp: numeric("price", "Log"),
    error=E.FgraphError, names=("'price'", "Log"))
add("schema-duplicate-fields", FIELD, "a Schema declaring field 'city' twice",
    lambda tmp: Schema((categorical("city"), categorical("city")), label="clicked"),
    error=E.FgraphError, names=("city", "duplicate"))


@case("field-min-count-string", FIELD, "`categorical('city', min_count='2')`", error=E.FgraphError,
      names=("min_count",), or_behaviour=True, expected="ConfigError naming min_count, or taken as 2")
def _(tmp):
    frame = pd.DataFrame({"city": ["a", "a", "b"]})
    enc = encoder([categorical("city", min_count="2")], frame)
    return enc.rare_values_["city"] == ["b"], f"rare values {enc.rare_values_['city']}"


# ==========================================================================================================
# 5. Frames and labels (tired user): duplicate and missing columns, empty frames, bad labels
# ==========================================================================================================

FRAME = "frames and labels"


@case("duplicate-columns-fit", "duplicate columns", "DataFrame with two columns named 'user'",
      error=E.DataError, names=("user", ("duplicate", "twice", "more than once", "several")))
def _(tmp):
    frame = pd.DataFrame([["a", "b", 1], ["c", "d", 0]], columns=["user", "user", "clicked"])
    return f"vocabulary {encoder([categorical('user')], frame).vocabularies_}"


@case("duplicate-columns-transform", "duplicate columns", "transform a frame with two columns named 'user'",
      error=E.DataError, names=("user", ("duplicate", "twice", "more than once", "several")))
def _(tmp):
    enc = encoder([categorical("user")], pd.DataFrame({"user": ["a", "c"]}))
    frame = pd.DataFrame([["a", "c"], ["c", "a"]], columns=["user", "user"])
    return f"ids {enc.transform(frame).ids.tolist()}"


add("missing-column-fit", FRAME, "fit a frame without the declared column 'price'",
    lambda tmp: encoder([numeric("price")], pd.DataFrame({"cost": [1.0]})),
    error=E.ColumnNotFoundError, names=("price",))
add("missing-column-transform", FRAME, "transform a frame without the fitted column 'city'",
    lambda tmp: encoder([categorical("city")], pd.DataFrame({"city": ["a"]})).transform(pd.DataFrame({"town": ["a"]})),
    error=E.ColumnNotFoundError, names=("city",))
add("empty-frame", FRAME, "fit an empty DataFrame",
    lambda tmp: encoder([categorical("city")], pd.DataFrame({"city": pd.Series([], dtype=object)})),
    error=E.DataError, names=(("empty", "no rows"),))
add("not-a-frame", FRAME, "fit a dict instead of a DataFrame",
    lambda tmp: encoder([categorical("city")], {"city": ["a", "b"]}), error=E.FgraphError, names=("DataFrame",))
add("numeric-comma-decimal", FRAME, "numeric column holding '1,5' at row 1",
    lambda tmp: encoder([numeric("price")], pd.DataFrame({"price": ["2", "1,5"]})),
    error=E.DataError, names=("'price'", "row 1", "1,5"))


def _label_frame(labels):
    return pd.DataFrame({"city": ["a", "b", "a", "b"], "clicked": labels})


add("label-strings", FRAME, "label column 'clicked' holding 'yes'/'no'",
    lambda tmp: encoder([categorical("city")], _label_frame(["yes", "no", "no", "yes"])).transform(
        _label_frame(["yes", "no", "no", "yes"])), error=E.DataError, names=("'clicked'",))
add("label-nan", FRAME, "label column 'clicked' with NaN at row 2",
    lambda tmp: encoder([categorical("city")], _label_frame([1, 0, np.nan, 1])).transform(
        _label_frame([1, 0, np.nan, 1])), error=E.DataError, names=("'clicked'", "row 2"))


@case("label-not-binary", FRAME, "label 2 in a binary run", error=E.DataError, names=("'clicked'", "2"))
def _(tmp):
    frame = _label_frame([1, 0, 2, 1])
    enc = encoder([categorical("city")], frame)
    Trainer(build_model("lr", enc.space_), TrainConfig(epochs=1, progress=False)).fit(enc.transform(frame))


@case("label-inf-regression", FRAME, "label +inf at row 1 in a regression run", error=E.DataError,
      names=("'clicked'", "row 1"))
def _(tmp):
    frame = _label_frame([1.0, np.inf, -1.0, 1.0])
    enc = encoder([categorical("city")], frame)
    t = Trainer(build_model("lr", enc.space_), TrainConfig(epochs=1, progress=False, task="regression"))
    t.fit(enc.transform(frame))
    return f"trained; clip range {t.clip_range}"


# ==========================================================================================================
# 6. Training options through the Python API (validated before any data is read)
# ==========================================================================================================

CONF = "config values"


def _api_bad(**over):
    return lambda tmp: before_data(tmp, **over)


add("api-epochs-2.5", CONF, "`train(epochs=2.5)` (ran 3 epochs)", _api_bad(epochs=2.5),
    error=E.ConfigError, names=("epochs", "2.5"))
add("api-batch-size-1000.7", CONF, "`train(batch_size=1000.7)` (was truncated)", _api_bad(batch_size=1000.7),
    error=E.ConfigError, names=("batch_size", "1000.7"))
add("api-epochs-bool", CONF, "`train(epochs=True)`", _api_bad(epochs=True), error=E.ConfigError, names=("epochs",))
add("api-lr-inf", CONF, "`train(lr=inf)`", _api_bad(lr=math.inf), error=E.ConfigError, names=("lr", "inf"))
add("api-lr-nan", CONF, "`train(lr=nan)`", _api_bad(lr=math.nan), error=E.ConfigError, names=("lr", "nan"))
add("api-lr-zero", CONF, "`train(lr=0)`", _api_bad(lr=0), error=E.ConfigError, names=("lr",))
add("api-lr-word", CONF, "`train(lr='fast')`", _api_bad(lr="fast"), error=E.ConfigError, names=("lr", "fast"))
add("api-two-bad-options", CONF, "`train(epochs=2.5, batch_size=0)`: both reported",
    _api_bad(epochs=2.5, batch_size=0), error=E.ConfigError, names=("epochs", "batch_size"))
add("api-patience-negative", CONF, "`train(patience=-1)`", _api_bad(patience=-1), error=E.ConfigError,
    names=("patience", "-1"))
add("api-patience-1.5", CONF, "`train(patience=1.5)`", _api_bad(patience=1.5), error=E.ConfigError,
    names=("patience", "1.5"))
add("api-seed-1.5", CONF, "`train(seed=1.5)`", _api_bad(seed=1.5), error=E.ConfigError, names=("seed", "1.5"))
add("api-threads-negative", CONF, "`train(threads=-2)`", _api_bad(threads=-2), error=E.ConfigError,
    names=("threads", "-2"))
add("api-progress-maybe", CONF, "`train(progress='maybe')`", _api_bad(progress="maybe"), error=E.ConfigError,
    names=("progress", "maybe"))
add("api-task-unknown", CONF, "`train(task='classification')`", _api_bad(task="classification"),
    error=E.ConfigError, names=("task", "classification"))
add("api-monitor-unknown", CONF, "`train(monitor='accuracy')`", _api_bad(monitor="accuracy"),
    error=E.ConfigError, names=("monitor", "accuracy"))
add("api-eval-batch-size-0", CONF, "`train(eval_batch_size=0)`", _api_bad(eval_batch_size=0),
    error=E.ConfigError, names=("eval_batch_size",))
add("api-unknown-option", CONF, "`train(learning_rate=0.1)` (a typo)", _api_bad(learning_rate=0.1),
    error=E.ConfigError, names=("learning_rate",))
add("api-min-count-1.5", CONF, "`train(min_count=1.5)`", _api_bad(min_count=1.5), error=E.ConfigError,
    names=("min_count", "1.5"))
add("api-model-options-list", CONF, "`train(model_options=['embed_dim', 4])`",
    _api_bad(model_options=["embed_dim", 4]), error=E.ConfigError, names=("model_options",))
add("api-dataset-options-string", CONF, "`train(dataset_options='n_samples=600')`",
    _api_bad(dataset_options="n_samples=600"), error=E.ConfigError, names=("dataset_options",))
add("api-model-not-a-string", CONF, "`train(model=3)`", _api_bad(model=3), error=E.ConfigError, names=("model",))
add("api-optimizer-unknown", CONF, "`train(optimizer='adamm')`", lambda tmp: tiny_train(tmp, optimizer="adamm"),
    error=E.ConfigError, names=("adamm",))
add("api-optimizer-options-foreign", CONF, "`train(optimizer_options={'momentum': 0.9})` with Adam",
    lambda tmp: tiny_train(tmp, optimizer_options={"momentum": 0.9}), error=E.ConfigError, names=("momentum",))
add("api-dataset-option-unknown", CONF, "`dataset_options={'nope': 1}`",
    lambda tmp: tiny_train(tmp, dataset_options={"nope": 1}), error=E.ConfigError, names=("nope",))
add("api-dataset-option-too-small", CONF, "`dataset_options={'n_samples': 5}`",
    lambda tmp: tiny_train(tmp, dataset_options={"n_samples": 5}), error=E.ConfigError, names=("n_samples", "5"))
add("api-dataset-option-word", CONF, "`dataset_options={'n_samples': 'abc'}`",
    lambda tmp: tiny_train(tmp, dataset_options={"n_samples": "abc"}), error=E.ConfigError,
    names=("n_samples", "abc"))
add("api-device-unknown", CONF, "`train(device='tpu9')`", _api_bad(device="tpu9"), error=E.ConfigError,
    names=("tpu9",))
add("api-device-cuda-on-cpu", CONF, "`train(device='cuda')` on a CPU build of torch", _api_bad(device="cuda"),
    error=E.ConfigError, names=("cuda",), skip="torch has CUDA here" if CUDA else None)
add("api-evaluate-split", CONF, "`evaluate(run, split='tests')`",
    lambda tmp: fg.evaluate(tiny_train(tmp).run_dir, split="tests"), error=E.ConfigError, names=("tests",))
add("trainconfig-epochs-2.5", CONF, "`TrainConfig(epochs=2.5)`", lambda tmp: TrainConfig(epochs=2.5),
    error=E.ConfigError, names=("epochs", "2.5"))
add("trainer-override-batch-size", CONF, "`Trainer(model, batch_size=1000.7)`",
    lambda tmp: Trainer(build_model("lr", tiny_encoded()[1].space_), batch_size=1000.7, progress=False),
    error=E.ConfigError, names=("batch_size", "1000.7"))


@case("api-lr-string-1e-3", CONF, "`train(lr='1e-3')` (how YAML reads 1e-3)", expected="the run uses lr 0.001")
def _(tmp):
    run = tiny_train(tmp, lr="1e-3")
    saved = json.loads((run.run_dir / "config.json").read_text())["train"]["lr"]
    return run.trainer.config.lr == 0.001 and saved == 0.001, f"config lr {run.trainer.config.lr!r}, saved {saved!r}"


@case("api-progress-no", CONF, "`train(progress='no')` (meant yes)", expected="progress is False")
def _(tmp):
    run = tiny_train(tmp, progress="no")
    return run.trainer.config.progress is False, f"progress {run.trainer.config.progress!r}"


@case("api-epochs-string", CONF, "`train(epochs='2')`", expected="2 epochs are run")
def _(tmp):
    run = tiny_train(tmp, epochs="2", patience=10)
    return run.trainer.epoch == 2 and run.trainer.config.epochs == 2, f"epochs run {run.trainer.epoch}"


@case("trainconfig-lr-string", CONF, "`TrainConfig(lr='1e-3')`", expected="lr is the float 0.001")
def _(tmp):
    cfg = TrainConfig(lr="1e-3")
    return cfg.lr == 0.001 and isinstance(cfg.lr, float), f"lr {cfg.lr!r}"


# -- negative regularisation and clipping ----------------------------------------------------------------

REG = "regularisation/clipping"
add("api-weight-decay-negative", REG, "`train(weight_decay=-0.1)`", _api_bad(weight_decay=-0.1),
    error=E.ConfigError, names=("weight_decay", "-0.1"))
add("api-embedding-weight-decay-negative", REG, "`train(embedding_weight_decay=-1e-4)`",
    _api_bad(embedding_weight_decay=-1e-4), error=E.ConfigError, names=("embedding_weight_decay",))
add("api-grad-clip-negative", REG, "`train(grad_clip=-1)` (gradient ascent)", _api_bad(grad_clip=-1),
    error=E.ConfigError, names=("grad_clip", "-1"))
add("api-grad-clip-word", REG, "`train(grad_clip='abc')`", _api_bad(grad_clip="abc"), error=E.ConfigError,
    names=("grad_clip", "abc"))
add("trainconfig-weight-decay-negative", REG, "`TrainConfig(weight_decay=-1)` on a Trainer",
    lambda tmp: Trainer(build_model("fm", tiny_encoded()[1].space_, embed_dim=4),
                        TrainConfig(weight_decay=-1.0, progress=False)),
    error=E.ConfigError, names=("weight_decay",))
add("api-weight-decay-inf", REG, "`train(weight_decay=inf)`", _api_bad(weight_decay=math.inf),
    error=E.ConfigError, names=("weight_decay", "inf"))


# ==========================================================================================================
# 7. Divergence and NaN
# ==========================================================================================================

DIV = "divergence/NaN"


def _ckpt_finite(tmp: Path, run="run"):
    path = tmp / run / "checkpoint.pt"
    if not path.is_file():
        return True, "no checkpoint"
    state = state_of(path)
    ok = finite_state(state["model_state"]) and finite_state(state.get("best_model_state"))
    return ok, f"checkpoint of epoch {state.get('epoch')} {'is finite' if ok else 'holds non-finite weights'}"


@case("diverge-lr-10", DIV, "FM at lr 10 (loss reached 6.6e8, exit 0)", error=E.TrainingDivergedError,
      names=("epoch", "step"), intact=_ckpt_finite)
def _(tmp):
    run = tiny_train(tmp, lr=10, epochs=3, dataset_options={"n_samples": 2000})
    return f"finished; losses {[round(h['train_loss'], 1) for h in run.trainer.history]}"


class NaNFromEpoch2(CTRModel):
    """A model whose output turns NaN from the second epoch on, as a diverging run's would."""

    def __init__(self, space):
        super().__init__(space)
        self.linear = FieldLinear(space)
        self.poisoned = False

    def on_epoch_start(self, epoch: int) -> None:
        self.poisoned = epoch >= 2

    def forward(self, batch):
        out = self.linear(batch)
        return out * float("nan") if self.poisoned else out


def _last_good_kept(tmp: Path):
    path = tmp / "run" / "checkpoint.pt"
    if not path.is_file():
        return False, "no checkpoint left"
    state = state_of(path)
    ok = state.get("epoch") == 1 and finite_state(state["model_state"])
    return ok, f"checkpoint of epoch {state.get('epoch')}, finite {finite_state(state['model_state'])}"


@case("nan-loss-epoch-2", DIV, "loss turns NaN in epoch 2", error=E.TrainingDivergedError,
      names=("epoch 2", "step"), intact=_last_good_kept)
def _(tmp):
    _, enc, tr, va = tiny_encoded()
    seed_everything(0)
    t = Trainer(NaNFromEpoch2(enc.space_), TrainConfig(epochs=3, batch_size=128, progress=False, patience=10),
                encoder=enc, run_dir=tmp / "run").fit(tr, va)
    return f"finished; losses {[h['train_loss'] for h in t.history]}"


@case("nan-weights-evaluate", DIV, "evaluate a run whose checkpoint holds NaN weights", error=E.FgraphError,
      names=(("NaN", "nan", "non-finite", "not finite"),))
def _(tmp):
    run = tiny_train(tmp)
    path = run.run_dir / "checkpoint.pt"
    state = state_of(path)
    for key in ("model_state", "best_model_state"):
        if state.get(key):
            for v in state[key].values():
                if v.is_floating_point():
                    v.fill_(float("nan"))
    torch.save(state, path)
    return f"metrics {fg.evaluate(run.run_dir)}"


@case("predict-extreme-input", DIV, "predict on a scaled value of 1e38 (fitted around 0)", error=E.FgraphError,
      names=(("amount", "NaN", "nan", "non-finite", "finite", "inf"),), or_behaviour=True,
      expected="an error naming 'amount' or NaN, or finite probabilities")
def _(tmp):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"amount": rng.normal(size=400), "city": rng.choice(list("abc"), 400),
                          "clicked": rng.integers(0, 2, 400)})
    enc = encoder([numeric("amount"), categorical("city")], frame)
    seed_everything(0)
    t = Trainer(build_model("fm", enc.space_, embed_dim=4), TrainConfig(epochs=1, batch_size=128, progress=False))
    t.fit(enc.transform(frame))
    pred = t.predict(enc.transform(pd.DataFrame({"amount": [1e38, 0.0], "city": ["a", "b"], "clicked": [0, 1]})))
    return bool(np.isfinite(pred).all()), f"probabilities {pred.tolist()}"


# ==========================================================================================================
# 8. Run directories
# ==========================================================================================================

RUN = "run directories"


def _first_run_intact(tmp: Path):
    saved = json.loads((tmp / "saved.json").read_text())
    now = digests(tmp / "first_run")
    changed = [k for k in saved if saved[k] != now[k]]
    return not changed, f"changed: {changed}" if changed else "first run intact"


def _make_first_run(tmp: Path):
    tiny_train(tmp, out=str(tmp / "first_run"))
    (tmp / "saved.json").write_text(json.dumps(digests(tmp / "first_run")))


@case("rundir-second-training-api", RUN, "a second `train()` into an existing run directory",
      error=E.RunDirectoryError, names=("first_run",), intact=_first_run_intact)
def _(tmp):
    _make_first_run(tmp)
    tiny_train(tmp, out=str(tmp / "first_run"), model="lr")


@cli_case("rundir-second-training-cli", RUN, "`fgraph train --out RUN` twice", error=True, names=("first_run",),
          intact=_first_run_intact)
def _(tmp):
    _make_first_run(tmp)
    return cli_train(tmp, "--model", "fm", out="first_run")


@case("rundir-overwrite-api", RUN, "`train(..., overwrite=True)` into an existing run",
      expected="the new run replaces the old one consistently")
def _(tmp):
    tiny_train(tmp, out=str(tmp / "r"))
    tiny_train(tmp, out=str(tmp / "r"), model="lr", overwrite=True)
    cfg = json.loads((tmp / "r" / "config.json").read_text())["model"]
    ck = state_of(tmp / "r" / "checkpoint.pt")["model_name"]
    return cfg == ck == "lr", f"config.json model {cfg!r}, checkpoint model {ck!r}"


@case("rundir-overwrite-cli", RUN, "`fgraph train --out RUN --overwrite` over an existing run",
      expected="exit 0, the new run replaces the old")
def _(tmp):
    must_succeed(cli_train(tmp, out="r"))
    must_succeed(cli("train", "--out", tmp / "r", "--overwrite", "--model", "lr", "--epochs", "1", "--no-progress",
                     "--threads", "1", "--dataset-option", "n_samples=600"))
    cfg = json.loads((tmp / "r" / "config.json").read_text())["model"]
    ck = state_of(tmp / "r" / "checkpoint.pt")["model_name"]
    return cfg == ck == "lr", f"config.json model {cfg!r}, checkpoint model {ck!r}"


@case("rundir-out-is-file-api", RUN, "`train(out=<an existing file>)`", error=E.RunDirectoryError,
      names=("notes.txt",), intact=lambda tmp: ((tmp / "notes.txt").read_text() == "mine", "notes.txt kept"))
def _(tmp):
    (tmp / "notes.txt").write_text("mine")
    tiny_train(tmp, out=str(tmp / "notes.txt"))


@cli_case("rundir-out-is-file-cli", RUN, "`fgraph train --out <an existing file>`", error=True,
          names=("notes.txt",), intact=lambda tmp: ((tmp / "notes.txt").read_text() == "mine", "notes.txt kept"))
def _(tmp):
    (tmp / "notes.txt").write_text("mine")
    return cli_train(tmp, out="notes.txt")


@case("rundir-out-under-file", RUN, "`train(out='notes.txt/run')` (a parent is a file)", error=E.RunDirectoryError,
      names=("notes.txt",))
def _(tmp):
    (tmp / "notes.txt").write_text("mine")
    tiny_train(tmp, out=str(tmp / "notes.txt" / "run"))


@case("rundir-empty-existing-dir", RUN, "`train(out=<an existing empty directory>)`",
      expected="accepted: an empty directory holds no run")
def _(tmp):
    (tmp / "empty").mkdir()
    run = tiny_train(tmp, out=str(tmp / "empty"))
    return (run.run_dir / "checkpoint.pt").is_file(), "trained"


@case("rundir-locked", RUN, "`train(overwrite=True)` into a directory another process is training in",
      error=E.RunDirectoryError, names=("busy",), timeout=120,
      intact=lambda tmp: _config_and_checkpoint_agree(tmp / "busy", "fm"))
def _(tmp):
    with training_in_background(tmp / "busy", "fm"):
        tiny_train(tmp, out=str(tmp / "busy"), model="lr", overwrite=True)


def _config_and_checkpoint_agree(folder: Path, model: str | None = None):
    cfg = json.loads((folder / "config.json").read_text())["model"]
    ck = state_of(folder / "checkpoint.pt")["model_name"]
    ok = cfg == ck and (model is None or cfg == model)
    return ok, f"config.json model {cfg!r}, checkpoint model {ck!r}"


def _concurrent(tmp: Path, *flags: str):
    """Start ``fgraph train`` for fm and lr into one --out at the same moment; wait for both."""
    common = ["--out", str(tmp / "shared_run"), "--epochs", "10", "--batch-size", "64", "--no-progress", "--threads",
              "1", "--patience", "100", "--dataset-option", "n_samples=2000", *flags]
    procs = [subprocess.Popen([sys.executable, "-m", "fgraph.cli", "train", "--model", m, *common,
                               *(["--embed-dim", "4"] if m == "fm" else [])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=py_env()) for m in ("fm", "lr")]
    errs = []
    for p in procs:
        try:
            errs.append(p.communicate(timeout=150)[1].decode())
        finally:
            stop(p)
    rc = [p.returncode for p in procs]
    agree, detail = _config_and_checkpoint_agree(tmp / "shared_run")
    refused = [e for p, e in zip(procs, errs) if p.returncode != 0]
    one_line = all(p.returncode in (0, 2) for p in procs) and all(
        e.strip().startswith("fgraph: error:") and "Traceback" not in e and len(e.strip().splitlines()) == 1
        for e in refused)
    shown = _excerpt(refused[0], 120) if refused else "none refused"
    return rc, agree and one_line, f"exit codes {rc}; {detail}; refused: {shown}"


@case("rundir-concurrent-cli", RUN, "two `fgraph train` processes (fm, lr) into the same --out at once",
      expected="one exits 0, the other exits 2 with one line; config.json and checkpoint agree", timeout=180)
def _(tmp):
    rc, ok, detail = _concurrent(tmp)
    return ok and sorted(rc) == [0, 2], detail


@case("rundir-concurrent-overwrite-cli", RUN, "two `fgraph train --overwrite` processes into the same --out at once",
      expected="each exits 0 or 2 with one line (the lock); config.json and checkpoint agree", timeout=180)
def _(tmp):
    rc, ok, detail = _concurrent(tmp, "--overwrite")
    return ok and 0 in rc, detail


@case("rundir-resume-keeps-config", RUN, "resume a run (epochs 1 -> 2)", expected="config.json not rewritten")
def _(tmp):
    tiny_train(tmp, patience=10)
    before = (tmp / "run" / "config.json").read_bytes()
    run = tiny_train(tmp, epochs=2, patience=10, resume=True)
    after = (tmp / "run" / "config.json").read_bytes()
    if before == after:
        return run.trainer.epoch == 2, f"config.json unchanged; {run.trainer.epoch} epochs"
    was, now = json.loads(before)["train"]["epochs"], json.loads(after)["train"]["epochs"]
    return False, f"config.json rewritten: {was} -> {now} epochs"


class Crash(Exception):
    pass


@case("rundir-log-epoch-twice", RUN, "a crash after epoch 2 is logged but before its checkpoint, then resume",
      expected="log.txt and history.json hold each epoch once")
def _(tmp):
    original = getattr(Trainer, "_write_checkpoint", None)
    if original is None:
        raise Unexpected("Trainer._write_checkpoint is gone: update this case to crash before epoch 2's checkpoint")

    def crash_at_epoch_2(self):
        if self.epoch == 2:
            raise Crash("simulated crash")
        return original(self)

    Trainer._write_checkpoint = crash_at_epoch_2
    try:
        tiny_train(tmp, epochs=3, patience=10)
    except Crash:
        pass
    finally:
        Trainer._write_checkpoint = original
    tiny_train(tmp, epochs=3, patience=10, resume=True)
    logged = [int(m.group(1)) for m in re.finditer(r"^epoch\s+(\d+)", (tmp / "run" / "log.txt").read_text(), re.M)]
    history = [h["epoch"] for h in json.loads((tmp / "run" / "history.json").read_text())]
    return logged == [1, 2, 3] and history == [1, 2, 3], f"log.txt epochs {logged}, history.json epochs {history}"


@case("resume-finished-run", RUN, "resume a finished 1-epoch run with epochs=1",
      expected="nothing retrained, history unchanged")
def _(tmp):
    tiny_train(tmp)
    run = tiny_train(tmp, resume=True)
    return run.trainer.epoch == 1 and len(run.trainer.history) == 1, f"epoch {run.trainer.epoch}"


add("resume-missing-dir", RUN, "`train(resume=True, out=<no such directory>)`",
    lambda tmp: tiny_train(tmp, out=str(tmp / "never_ran"), resume=True), error=E.FgraphError, names=("never_ran",))


@case("resume-no-checkpoint", RUN, "resume a run directory whose checkpoint.pt was deleted", error=E.FgraphError,
      names=(("checkpoint.pt", "gone_ckpt"),))
def _(tmp):
    tiny_train(tmp, out=str(tmp / "gone_ckpt"))
    (tmp / "gone_ckpt" / "checkpoint.pt").unlink()
    tiny_train(tmp, out=str(tmp / "gone_ckpt"), epochs=2, resume=True)


@case("resume-other-model", RUN, "resume an fm run as lr", error=E.ConfigError, names=("model", "'fm'"))
def _(tmp):
    tiny_train(tmp)
    tiny_train(tmp, model="lr", epochs=2, resume=True)


@case("resume-corrupt-config", RUN, "resume a run whose config.json is truncated", error=E.InputFileError,
      names=("config.json",))
def _(tmp):
    tiny_train(tmp)
    path = tmp / "run" / "config.json"
    path.write_text(path.read_text()[:25])
    tiny_train(tmp, epochs=2, resume=True)


@case("resume-new-lr", RUN, "resume with another lr (0.003 -> 0.5)", error=E.ConfigError, names=("lr",),
      or_behaviour=True, expected="ConfigError naming lr, or the resumed optimiser uses the new lr")
def _(tmp):
    tiny_train(tmp, lr=0.003, patience=10)
    run = tiny_train(tmp, lr=0.5, epochs=2, patience=10, resume=True)
    used = [g["lr"] for spec in run.trainer.optimizers for g in spec.optimizer.param_groups]
    return all(v == 0.5 for v in used), f"optimiser lr after resume {used}"


# ==========================================================================================================
# 9. Checkpoint/encoder consistency, resume exactness, seeded runs, SIGKILL
# ==========================================================================================================

CONS = "checkpoint/encoder consistency"


def _renamed(frame: pd.DataFrame, field: str = "f0") -> pd.DataFrame:
    out = frame.copy()
    out[field] = out[field].astype(str).str.replace("v", "w", regex=False)
    return out


def _store_digests(tmp: Path, folder: Path):
    (tmp / "saved.json").write_text(json.dumps(digests(folder, ("checkpoint.pt", "encoder.json"))))


def _stored_intact(tmp: Path, folder="run"):
    saved = json.loads((tmp / "saved.json").read_text())
    now = digests(tmp / folder, tuple(saved))
    changed = [k for k in saved if saved[k] != now[k]]
    return not changed, f"changed: {changed}" if changed else "checkpoint and encoder intact"


@case("fingerprint-mismatch-resume", CONS, "resume (Trainer) against data whose vocabulary has the same sizes "
      "but other values", error=E.CheckpointError, names=("checkpoint.pt",), intact=_stored_intact)
def _(tmp):
    tiny_train(tmp)
    _store_digests(tmp, tmp / "run")
    d = synthetic(n_samples=600)
    train, valid = _renamed(d.train), _renamed(d.valid)
    enc = FieldEncoder(d.schema).fit(train)
    seed_everything(0)
    t = Trainer(build_model("fm", enc.space_, embed_dim=4), _saved_config(tmp / "run", epochs=2),
                encoder=enc, run_dir=tmp / "run")
    t.fit(enc.transform(train), enc.transform(valid), resume=True)
    return "resumed on permuted ids"


@case("fingerprint-mismatch-load", CONS, "load a checkpoint into a Trainer whose encoder has other values of "
      "the same sizes", error=E.CheckpointError, names=(("checkpoint", "vocabular", "encoder"),))
def _(tmp):
    tiny_train(tmp)
    d = synthetic(n_samples=600)
    enc = FieldEncoder(d.schema).fit(_renamed(d.train))
    t = Trainer(build_model("fm", enc.space_, embed_dim=4), _saved_config(tmp / "run"), encoder=enc)
    t.load_state_dict(load_checkpoint(tmp / "run" / "checkpoint.pt"))
    return "loaded"


def _saved_config(run_dir: Path, **over) -> TrainConfig:
    """The TrainConfig a run was trained with (so that only the encoder differs on resume)."""
    saved = state_of(run_dir / "checkpoint.pt")["config"]
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{**{k: v for k, v in saved.items() if k in known}, **over})


def _edit_config(tmp: Path, **changes):
    path = tmp / "run" / "config.json"
    cfg = json.loads(path.read_text())
    for k, v in changes.items():
        cfg[k] = v
    path.write_text(json.dumps(cfg, indent=1))


@case("runinfo-vs-config-model", CONS, "evaluate a run whose config.json says lr, checkpoint holds fm",
      error=E.CheckpointError, names=("config.json",))
def _(tmp):
    tiny_train(tmp)
    _edit_config(tmp, model="lr", model_options={})
    return f"metrics {fg.evaluate(tmp / 'run')}"


@case("runinfo-vs-config-dataset", CONS, "evaluate a run whose config.json names other dataset_options",
      error=E.CheckpointError, names=("config.json",))
def _(tmp):
    tiny_train(tmp)
    _edit_config(tmp, dataset_options={"n_samples": 900})
    return f"metrics {fg.evaluate(tmp / 'run')}"


@case("swapped-checkpoint-resume", CONS, "resume an fm run whose checkpoint.pt was copied from an lr run",
      error=E.CheckpointError, names=("checkpoint.pt",))
def _(tmp):
    tiny_train(tmp, out=str(tmp / "run"))
    tiny_train(tmp, out=str(tmp / "other"), model="lr")
    (tmp / "run" / "checkpoint.pt").write_bytes((tmp / "other" / "checkpoint.pt").read_bytes())
    tiny_train(tmp, epochs=2, resume=True)


RESUME = "resume exactness"


def _resume_exact(model: str):
    def run(tmp):
        kw = dict(model=model, epochs=3, lr=0.01, batch_size=128, patience=10)
        straight = tiny_train(tmp, out=str(tmp / "a"), **kw)
        tiny_train(tmp, out=str(tmp / "b"), **{**kw, "epochs": 1})
        resumed = tiny_train(tmp, out=str(tmp / "b"), resume=True, **kw)
        la = [h["train_loss"] for h in straight.trainer.history]
        lb = [h["train_loss"] for h in resumed.trainer.history]
        sa, sb = straight.model.state_dict(), resumed.model.state_dict()
        same = la == lb and sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
        return same, "identical losses and weights" if same else f"losses {la} vs resumed {lb}"
    return run


for _m in ("fives", "fm", "lr", "graphfm", "fignn", "afm", "ifm", "inn", "deepifm"):
    add(f"resume-exact-{_m}", RESUME if _m != "fives" else "FIVES resume", f"{_m}: 1 epoch + resume to 3 vs 3 epochs",
        _resume_exact(_m), expected="identical losses and weights")


KEPT = "kept behaviour"


@case("seeded-runs-repeat", KEPT, "two fm runs with the same seed", expected="identical losses and weights")
def _(tmp):
    a = tiny_train(tmp, out=str(tmp / "a"), epochs=2, patience=10)
    b = tiny_train(tmp, out=str(tmp / "b"), epochs=2, patience=10)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    same = [h["train_loss"] for h in a.trainer.history] == [h["train_loss"] for h in b.trainer.history] \
        and all(torch.equal(sa[k], sb[k]) for k in sa)
    return same, "identical" if same else "runs differ"


@case("seeded-runs-repeat-fives", KEPT, "two FIVES runs with the same seed", expected="identical losses")
def _(tmp):
    a = tiny_train(tmp, out=str(tmp / "a"), model="fives", epochs=2, patience=10)
    b = tiny_train(tmp, out=str(tmp / "b"), model="fives", epochs=2, patience=10)
    la, lb = [h["train_loss"] for h in a.trainer.history], [h["train_loss"] for h in b.trainer.history]
    return la == lb, f"{la} vs {lb}"


@case("sigkill-survival", KEPT, "SIGKILL a training mid-run, then load and resume its checkpoint",
      expected="the checkpoint loads; resume continues from it", timeout=150)
def _(tmp):
    out = tmp / "killed"
    proc = spawn_train(out, "fm", epochs=2000, n=4000)
    try:
        started = wait_for(lambda: history_len(out / "history.json") >= 2, 90, proc)
        if not started:
            raise Unexpected(f"the background training did not get going: {proc.stderr.read().decode()[-300:]}")
        time.sleep(0.13)
        proc.send_signal(signal.SIGKILL)
    finally:
        stop(proc)
    state = load_checkpoint(out / "checkpoint.pt")
    done = int(state["epoch"])
    run = fg.train(**tiny_kwargs(tmp, out=str(out), epochs=done + 1, batch_size=64, patience=100000,
                                 dataset_options={"n_samples": 4000}, resume=True))
    ok = run.trainer.epoch == done + 1 and len(run.trainer.history) == done + 1
    return ok, f"killed after epoch {done}; resumed to {run.trainer.epoch}"


class Evil:
    """An object whose unpickling runs a shell command (what a malicious checkpoint carries)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _no_marker(tmp: Path):
    hit = (tmp / "pwned").exists()
    return not hit, "the pickle's code ran" if hit else "the pickle's code did not run"


@case("malicious-pickle-load", KEPT, "`load_checkpoint` of a checkpoint whose pickle runs a command",
      error=E.CheckpointError, names=("checkpoint.pt",), intact=_no_marker)
def _(tmp):
    torch.save({"format": 1, "payload": Evil(tmp / "pwned")}, tmp / "checkpoint.pt")
    load_checkpoint(tmp / "checkpoint.pt")


@cli_case("malicious-pickle-evaluate", KEPT, "`fgraph evaluate` on a run whose checkpoint runs a command",
          error=True, names=("checkpoint.pt",), intact=_no_marker)
def _(tmp):
    tiny_train(tmp)
    torch.save({"format": 1, "payload": Evil(tmp / "pwned")}, tmp / "run" / "checkpoint.pt")
    return cli("evaluate", tmp / "run")


# ==========================================================================================================
# 10. Bad checkpoints
# ==========================================================================================================

CKPT = "bad checkpoint"


def _ckpt_case(mutate, via="evaluate"):
    def run(tmp):
        tiny_train(tmp, out=str(tmp / "my_run"))
        path = tmp / "my_run" / "checkpoint.pt"
        mutate(path)
        if via == "evaluate":
            return f"metrics {fg.evaluate(tmp / 'my_run')}"
        if via == "load":
            return f"loaded keys {sorted(load_checkpoint(path))[:5]}"
        if via == "resume":
            tiny_train(tmp, out=str(tmp / "my_run"), epochs=2, resume=True)
            return "resumed"
        return cli("evaluate", tmp / "my_run")
    run._cli = via == "cli"
    return run


def _truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _edit_state(change):
    def mutate(path: Path):
        state = state_of(path)
        change(state)
        torch.save(state, path)
    return mutate


def _wrong_shape(state):
    for key in ("model_state", "best_model_state"):
        sd = state.get(key)
        if sd:
            name = next(k for k, v in sd.items() if v.dim() == 2)
            sd[name] = torch.zeros(sd[name].shape[0] + 7, sd[name].shape[1])


def _encoder_smaller(state):
    enc = state["encoder"]
    enc["vocabularies"]["f0"] = enc["vocabularies"]["f0"][:-1]
    k = enc["space"]["names"].index("f0")
    enc["space"]["cardinalities"][k] -= 1


add("ckpt-truncated", CKPT, "evaluate with a checkpoint.pt cut in half", _ckpt_case(_truncate),
    error=E.CheckpointError, names=("checkpoint.pt",))
add("ckpt-truncated-resume", CKPT, "resume with a checkpoint.pt cut in half", _ckpt_case(_truncate, "resume"),
    error=E.CheckpointError, names=("checkpoint.pt",))
add("ckpt-truncated-cli", CKPT, "`fgraph evaluate` with a checkpoint.pt cut in half", _ckpt_case(_truncate, "cli"),
    error=E.FgraphError, names=("checkpoint.pt",))
add("ckpt-empty", CKPT, "zero-byte checkpoint.pt", _ckpt_case(lambda p: p.write_bytes(b""), "load"),
    error=E.CheckpointError, names=("checkpoint.pt",))
add("ckpt-text-file", CKPT, "checkpoint.pt that is a text file",
    _ckpt_case(lambda p: p.write_text("not a checkpoint\n"), "load"), error=E.CheckpointError, names=("checkpoint.pt",))
add("ckpt-foreign-dict", CKPT, "checkpoint.pt of another program (`{'weights': tensor}`)",
    _ckpt_case(lambda p: torch.save({"weights": torch.zeros(3)}, p)), error=E.CheckpointError, names=("checkpoint.pt",))
add("ckpt-plain-tensor", CKPT, "checkpoint.pt holding a bare tensor",
    _ckpt_case(lambda p: torch.save(torch.zeros(3), p), "load"), error=E.CheckpointError, names=("checkpoint.pt",))
add("ckpt-keyless", CKPT, "checkpoint.pt holding only `{'format': 1}`",
    _ckpt_case(lambda p: torch.save({"format": 1}, p)), error=E.CheckpointError, names=("checkpoint.pt",))
add("ckpt-missing-key", CKPT, "checkpoint.pt without 'model_hparams'",
    _ckpt_case(_edit_state(lambda s: s.pop("model_hparams"))), error=E.CheckpointError,
    names=("checkpoint.pt", "model_hparams"))
add("ckpt-format-99", CKPT, "checkpoint.pt of format 99",
    _ckpt_case(_edit_state(lambda s: s.update(format=99)), "load"), error=E.CheckpointError,
    names=("checkpoint.pt", "99"))
add("ckpt-weights-wrong-shape", CKPT, "checkpoint weights whose shapes do not fit its encoder",
    _ckpt_case(_edit_state(_wrong_shape)), error=E.CheckpointError, names=("checkpoint.pt",))
add("ckpt-encoder-smaller", CKPT, "checkpoint whose stored encoder lost a value of field f0",
    _ckpt_case(_edit_state(_encoder_smaller)), error=E.CheckpointError, names=("checkpoint.pt",))
add("ckpt-is-directory", CKPT, "checkpoint.pt that is a directory",
    _ckpt_case(lambda p: (p.unlink(), p.mkdir())), error=E.FgraphError, names=("checkpoint.pt",))


@cli_case("evaluate-corrupt-config", CKPT, "`fgraph evaluate` on a run whose config.json is not JSON",
          error=True, names=("config.json",))
def _(tmp):
    tiny_train(tmp)
    (tmp / "run" / "config.json").write_text("{model: fm")
    return cli("evaluate", tmp / "run")


@cli_case("evaluate-no-run", CKPT, "`fgraph evaluate /no/such/run`", error=True, names=("/no/such/run",))
def _(tmp):
    return cli("evaluate", "/no/such/run")


# ==========================================================================================================
# 11. Corrupt encoder.json
# ==========================================================================================================

ENC = "corrupt encoder.json"


def _encoder_file(mutate):
    def run(tmp):
        frame = pd.DataFrame({"city": ["a", "b", "a"]})
        enc = encoder([categorical("city")], frame)
        path = tmp / "my_encoder.json"
        enc.save(path)
        mutate(path)
        back = FieldEncoder.load(path)
        return f"loaded; ids {codes(back, frame)}"
    return run


def _json_edit(change):
    def mutate(path: Path):
        state = json.loads(path.read_text())
        path.write_text(json.dumps(change(state)))
    return mutate


def _longer_vocab(state):
    state["vocabularies"]["city"] = state["vocabularies"]["city"] + ["zz"]
    return state


add("encoder-truncated", ENC, "encoder.json cut in half",
    _encoder_file(lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 2])), error=E.FgraphError,
    names=("my_encoder.json",))
add("encoder-empty", ENC, "zero-byte encoder.json", _encoder_file(lambda p: p.write_bytes(b"")),
    error=E.FgraphError, names=("my_encoder.json",))
add("encoder-not-json", ENC, "encoder.json holding YAML text", _encoder_file(lambda p: p.write_text("format: 1\n")),
    error=E.FgraphError, names=("my_encoder.json",))
add("encoder-list", ENC, "encoder.json holding a JSON list", _encoder_file(lambda p: p.write_text("[1, 2]")),
    error=E.FgraphError, names=("my_encoder.json",))
add("encoder-keyless", ENC, "encoder.json holding `{\"format\": 1}`",
    _encoder_file(lambda p: p.write_text('{"format": 1}')), error=E.FgraphError, names=("my_encoder.json",))
add("encoder-format-2", ENC, "encoder.json of format 2", _encoder_file(_json_edit(lambda s: {**s, "format": 2})),
    error=E.FgraphError, names=("my_encoder.json", "2"))
add("encoder-non-utf8", ENC, "encoder.json with a byte that is not UTF-8",
    _encoder_file(lambda p: p.write_bytes(p.read_bytes().replace(b'"a"', b'"\xff"'))), error=E.FgraphError,
    names=("my_encoder.json",))
add("encoder-vocab-disagrees", ENC, "encoder.json whose vocabulary has one value more than its space",
    _encoder_file(_json_edit(_longer_vocab)), error=E.FgraphError, names=("my_encoder.json",))


# ==========================================================================================================
# 12. Encoded ids past the vocabulary
# ==========================================================================================================

IDS = "ids past vocabulary"


def _bad_ids(value, where="fit"):
    def run(tmp):
        _, enc, tr, _ = tiny_encoded()
        ids = tr.ids.clone()
        ids[5, 3] = value
        bad = EncodedData(ids, tr.values, tr.bags, tr.y, tr.space, tr.label_name)
        t = Trainer(build_model("fm", enc.space_, embed_dim=4), TrainConfig(epochs=1, batch_size=256, progress=False))
        if where == "fit":
            t.fit(bad)
        else:
            t.predict(bad)
        return "accepted"
    return run


add("ids-past-vocab-fit", IDS, "EncodedData with id 999 in field f3 (13 ids), training", _bad_ids(999),
    error=E.DataError, names=("'f3'", "999"))
add("ids-past-vocab-predict", IDS, "EncodedData with id 999 in field f3, predict", _bad_ids(999, "predict"),
    error=E.DataError, names=("'f3'", "999"))
add("ids-negative", IDS, "EncodedData with id -4 in field f3", _bad_ids(-4), error=E.DataError, names=("'f3'", "-4"))
add("ids-next-field", IDS, "EncodedData with id 13 in field f3 (would read field f4's table)", _bad_ids(13),
    error=E.DataError, names=("'f3'", "13"))


@case("ids-wrong-width", IDS, "EncodedData with 9 id columns for a 10-field space", error=E.DataError,
      names=(("10", "9"),))
def _(tmp):
    _, enc, tr, _ = tiny_encoded()
    bad = EncodedData(tr.ids[:, :9].contiguous(), None, None, tr.y, tr.space, tr.label_name)
    Trainer(build_model("fm", enc.space_, embed_dim=4), TrainConfig(epochs=1, progress=False)).fit(bad)


@case("bag-ids-past-vocab", IDS, "bag token id 50 in multi-valued field 'genres'", error=E.DataError,
      names=("'genres'", "50"))
def _(tmp):
    frame = pd.DataFrame({"genres": ["a|b", "b|c", "a", "c|a"] * 10, "clicked": [0, 1] * 20})
    enc = encoder([multi_valued("genres")], frame)
    data = enc.transform(frame)
    bags = data.bags.clone()
    bags[0, 0, 0] = 50
    bad = EncodedData(data.ids, data.values, bags, data.y, data.space, data.label_name)
    Trainer(build_model("fm", enc.space_, embed_dim=4), TrainConfig(epochs=1, progress=False)).fit(bad)


# ==========================================================================================================
# 13. Model options
# ==========================================================================================================

MODEL = "model options"


def _build(name, **hparams):
    def run(tmp):
        m = build_model(name, tiny_encoded(200)[1].space_, **hparams)
        return f"built {type(m).__name__}"
    return run


add("graphfm-heads-0", MODEL, "`build_model('graphfm', heads=0)`", _build("graphfm", heads=0), error=E.ConfigError,
    names=("heads", "0"))
add("graphfm-heads-negative", MODEL, "`build_model('graphfm', heads=-2)`", _build("graphfm", heads=-2),
    error=E.ConfigError, names=("heads", "-2"))
add("graphfm-heads-2.5", MODEL, "`build_model('graphfm', heads=2.5)`", _build("graphfm", heads=2.5),
    error=E.ConfigError, names=("heads", "2.5"))
add("graphfm-neighbours-abc", MODEL, "`build_model('graphfm', neighbours='abc')`",
    _build("graphfm", neighbours="abc"), error=E.ConfigError, names=("neighbours", "abc"))
add("graphfm-neighbours-zero", MODEL, "`build_model('graphfm', neighbours=[0])`", _build("graphfm", neighbours=[0]),
    error=E.ConfigError, names=("neighbours",))
add("graphfm-neighbours-empty", MODEL, "`build_model('graphfm', neighbours=[])`", _build("graphfm", neighbours=[]),
    error=E.ConfigError, names=("neighbours",))
add("graphfm-dropout-1.5", MODEL, "`build_model('graphfm', dropout=1.5)`", _build("graphfm", dropout=1.5),
    error=E.ConfigError, names=("dropout", "1.5"))
add("fm-embed-dim-abc", MODEL, "`build_model('fm', embed_dim='abc')`", _build("fm", embed_dim="abc"),
    error=E.ConfigError, names=("embed_dim", "abc"))
add("fm-embed-dim-0", MODEL, "`build_model('fm', embed_dim=0)`", _build("fm", embed_dim=0), error=E.ConfigError,
    names=("embed_dim", "0"))
add("fm-embed-dim-2.5", MODEL, "`build_model('fm', embed_dim=2.5)`", _build("fm", embed_dim=2.5),
    error=E.ConfigError, names=("embed_dim", "2.5"))
add("fignn-steps-negative", MODEL, "`build_model('fignn', steps=-1)`", _build("fignn", steps=-1),
    error=E.ConfigError, names=("steps", "-1"))
add("fignn-attention-heads-0", MODEL, "`build_model('fignn', self_attention=True, attention_heads=0)`",
    _build("fignn", self_attention=True, attention_heads=0), error=E.ConfigError, names=("attention_heads",))
add("fives-orders-1", MODEL, "`build_model('fives', orders=1)`", _build("fives", orders=1), error=E.ConfigError,
    names=("orders", "1"))
add("model-unknown-option", MODEL, "`build_model('fm', num_layer=3)`", _build("fm", num_layer=3),
    error=E.ConfigError, names=("num_layer",))
add("model-unknown-name", MODEL, "`build_model('fnn')`", _build("fnn"), error=E.ConfigError, names=("fnn",))
add("api-embed-dim-abc", MODEL, "`train(embed_dim='abc')`", lambda tmp: tiny_train(tmp, embed_dim="abc"),
    error=E.ConfigError, names=("embed_dim", "abc"))
add("api-graphfm-heads-0", MODEL, "`train('graphfm', model_options={'heads': 0})`",
    lambda tmp: tiny_train(tmp, model="graphfm", model_options={"heads": 0}), error=E.ConfigError, names=("heads",))


@case("graphfm-neighbours-3", MODEL, "`build_model('graphfm', neighbours=3)`", error=E.ConfigError,
      names=("neighbours", "3"), or_behaviour=True, expected="ConfigError naming neighbours, or taken as [3]")
def _(tmp):
    m = build_model("graphfm", tiny_encoded(200)[1].space_, neighbours=3)
    return list(m.neighbours) == [3], f"neighbours {m.neighbours}"


# ==========================================================================================================
# 14. The command line: flags and config files
# ==========================================================================================================

FLAGS = "CLI options"
CFG = "config file"


def _cli_flags(*extra, flags=TINY_FLAGS):
    return lambda tmp: cli_train(tmp, *extra, flags=flags)


for _id, _extra, _names in [
    ("cli-epochs-2.5", ("--epochs", "2.5"), ("epochs", "2.5")),
    ("cli-batch-size-1000.7", ("--batch-size", "1000.7"), ("batch", "1000.7")),
    ("cli-embed-dim-abc", ("--embed-dim", "abc"), ("embed", "abc")),
    ("cli-threads-negative", ("--threads", "-2"), ("threads", "-2")),
    ("cli-lr-inf", ("--lr", "inf"), ("lr", "inf")),
    ("cli-lr-nan", ("--lr", "nan"), ("lr", "nan")),
    ("cli-lr-negative", ("--lr", "-0.1"), ("lr", "-0.1")),
    ("cli-weight-decay-negative", ("--weight-decay", "-1"), (("weight_decay", "weight-decay"), "-1")),
    ("cli-embedding-weight-decay-negative", ("--embedding-weight-decay", "-0.01"),
     (("embedding_weight_decay", "embedding-weight-decay"), "-0.01")),
    ("cli-patience-negative", ("--patience", "-1"), ("patience", "-1")),
    ("cli-optimizer-unknown", ("--optimizer", "adamm"), ("adamm",)),
    ("cli-monitor-mismatch", ("--task", "regression", "--monitor", "auc"), ("monitor", "auc")),
    ("cli-min-count-0", ("--min-count", "0"), ("min_count", "0")),
    ("cli-device-unknown", ("--device", "tpu9"), ("tpu9",)),
    ("cli-model-unknown", ("--model", "fnn"), ("fnn",)),
    ("cli-graphfm-heads-0", ("--model", "graphfm", "--model-option", "heads=0"), ("heads",)),
    ("cli-graphfm-neighbours-abc", ("--model", "graphfm", "--model-option", "neighbours=abc"), ("neighbours",)),

    ("cli-model-option-no-equals", ("--model-option", "heads"), ("heads", "KEY=VALUE")),
    ("cli-dataset-option-abc", ("--dataset-option", "n_samples=abc"), ("n_samples", "abc")),
    ("cli-dataset-option-unknown", ("--dataset-option", "nope=1"), ("nope",)),
]:
    cli_case(_id, FLAGS, "`fgraph train " + " ".join(_extra) + "`", error=True, names=_names)(_cli_flags(*_extra))

NO_EMBED_FLAGS = [f for i, f in enumerate(TINY_FLAGS) if "--embed-dim" not in TINY_FLAGS[max(i - 1, 0):i + 1]]
cli_case("cli-model-option-embed-dim-abc", FLAGS, "`fgraph train --model-option embed_dim=abc`", error=True,
         names=("embed_dim", "abc"))(_cli_flags("--model-option", "embed_dim=abc", flags=NO_EMBED_FLAGS))
cli_case("cli-embed-dim-conflict", FLAGS, "`--embed-dim 4 --model-option embed_dim=8` (two values)", error=True,
         names=("embed_dim",))(_cli_flags("--model-option", "embed_dim=8"))

cli_case("cli-device-cuda-on-cpu", FLAGS, "`fgraph train --device cuda` on a CPU build", error=True, names=("cuda",),
         skip="torch has CUDA here" if CUDA else None)(_cli_flags("--device", "cuda"))


# AIM (issue 13): its own flags and the options of its search. Each is refused before the run directory is made.
for _id, _extra, _names in [
    ("cli-aim-base-unknown", ("--model", "aim", "--base", "fnn"), ("base", "fnn")),
    ("cli-aim-max-order-1", ("--model", "aim", "--max-order", "1"), ("max_order", "1")),
    ("cli-aim-max-order-abc", ("--model", "aim", "--max-order", "abc"), ("max-order", "abc")),
    ("cli-base-on-fm", ("--model", "fm", "--base", "deepfm"), ("base",)),
    ("cli-max-order-on-fm", ("--model", "fm", "--max-order", "3"), ("max_order",)),
    ("cli-aim-grda-c-negative", ("--model", "aim", "--model-option", "grda_c=-1"), ("grda_c", "-1")),
    ("cli-aim-grda-c-too-many", ("--model", "aim", "--model-option", "grda_c=[0.1,0.2,0.3]"),
     ("grda_c", "max_order")),
    ("cli-aim-found-not-a-run", ("--model", "aim", "--model-option", "found=no_such_run"), ("no_such_run",)),
]:
    cli_case(_id, FLAGS, "`fgraph train " + " ".join(_extra) + "`", error=True, names=_names,
             intact=lambda tmp: not (tmp / "run").exists())(_cli_flags(*_extra))


@cli_case("cli-resume-without-out", FLAGS, "`fgraph train --resume` without --out", error=True, names=("--out",))
def _(tmp):
    return cli("train", "--resume", "--no-progress")


@cli_case("cli-resume-missing-dir", FLAGS, "`fgraph train --resume --out <no such directory>`", error=True,
          names=("never_ran",))
def _(tmp):
    return cli_train(tmp, "--resume", out="never_ran")


@cli_case("cli-missing-data-dir", FLAGS, "`fgraph train --dataset criteo --data-dir <empty dir>`", error=True,
          names=("criteo", "train.txt"))
def _(tmp):
    return cli("train", "--dataset", "criteo", "--data-dir", tmp, "--no-progress", "--out", tmp / "run")


@case("cli-graphfm-neighbours-3", FLAGS, "`fgraph train --model graphfm --model-option neighbours=3`",
      expected="exit 0 (3 taken as [3]) or exit 2 naming neighbours")
def _(tmp):
    res = cli_train(tmp, "--model", "graphfm", "--model-option", "neighbours=3")
    if res.escaped is not None or res.code not in (0, 2):
        must_succeed(res)
    if res.code == 2:
        ok = "neighbours" in res.err and res.err.strip().startswith("fgraph: error:") and "Traceback" not in res.err
        return ok, res.err.strip()
    return True, "trained with neighbours [3]"


def _cfg_cli(tmp: Path, path: Path, *extra):
    return cli("train", "--config", path, "--out", tmp / "run", *extra)


def _bad_config(text: str | bytes, name: str = "run.yaml"):
    def run(tmp):
        path = tmp / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return _cfg_cli(tmp, path)
    return run


def _yaml_bad(**raw):
    return lambda tmp: _cfg_cli(tmp, yaml_config(tmp, **raw))


cli_case("config-epochs-2.5", CFG, "YAML `epochs: 2.5`", error=True, names=("epochs", "2.5"))(_yaml_bad(epochs="2.5"))
cli_case("config-batch-size-1000.7", CFG, "YAML `batch_size: 1000.7`", error=True,
         names=("batch_size", "1000.7"))(_yaml_bad(batch_size="1000.7"))
cli_case("config-lr-inf", CFG, "YAML `lr: .inf`", error=True, names=("lr", "inf"))(_yaml_bad(lr=".inf"))
cli_case("config-progress-maybe", CFG, "YAML `progress: maybe`", error=True,
         names=("progress", "maybe"))(_yaml_bad(progress="maybe"))
cli_case("config-model-options-list", CFG, "YAML `model_options: [heads, 2]`", error=True,
         names=("model_options",))(_yaml_bad(model_options="[heads, 2]"))
cli_case("config-dataset-options-string", CFG, "YAML `dataset_options: n_samples=600`", error=True,
         names=("dataset_options",))(_yaml_bad(dataset_options="n_samples=600"))
cli_case("config-model-int", CFG, "YAML `model: 3`", error=True, names=("model",))(_yaml_bad(model="3"))
cli_case("config-weight-decay-negative", CFG, "YAML `weight_decay: -0.5`", error=True,
         names=("weight_decay", "-0.5"))(_yaml_bad(weight_decay="-0.5"))
cli_case("config-grad-clip-negative", CFG, "YAML `grad_clip: -1`", error=True,
         names=("grad_clip",))(_yaml_bad(grad_clip="-1"))
cli_case("config-unknown-key", CFG, "YAML `learning_rate: 0.1` (a typo)", error=True,
         names=("learning_rate",))(_yaml_bad(learning_rate="0.1"))
cli_case("config-malformed-yaml", CFG, "malformed YAML (`model: [fm`)", error=True,
         names=("bad.yaml",))(_bad_config("model: [fm\nepochs: 1\n", "bad.yaml"))
cli_case("config-malformed-json", CFG, "malformed JSON (`{\"epochs\": 1,`)", error=True,
         names=("bad.json",))(_bad_config('{"epochs": 1,', "bad.json"))
cli_case("config-json-nan", CFG, "JSON `{\"lr\": NaN}`", error=True,
         names=("lr", ("nan", "NaN")))(_bad_config('{"lr": NaN, "epochs": 1}', "run.json"))
cli_case("config-non-utf8", CFG, "config file with a Latin-1 byte", error=True,
         names=("latin.yaml",))(_bad_config(b"model: fm\n# caf\xe9\nepochs: 1\n", "latin.yaml"))
cli_case("config-top-level-list", CFG, "YAML holding a list, not a mapping", error=True,
         names=("list.yaml",))(_bad_config("- epochs\n- 1\n", "list.yaml"))
cli_case("config-missing-file", CFG, "`--config` naming a file that does not exist", error=True,
         names=("nowhere.yaml",))(lambda tmp: cli("train", "--config", tmp / "nowhere.yaml", "--no-progress"))
cli_case("config-duplicate-key", CFG, "YAML with `epochs:` twice (1, then 50)", error=True,
         names=("epochs",))(_bad_config("epochs: 1\nbatch_size: 256\nepochs: 50\nthreads: 1\nprogress: false\n"
                                        "dataset_options: {n_samples: 600}\n", "dup.yaml"))


@case("config-out-int", CFG, "YAML `out: 5` (a number) and no --out", error=E.FgraphError, names=("out",),
      or_behaviour=True, expected="exit 2 naming out, or the run written to the directory '5'")
def _(tmp):
    res = cli("train", "--config", yaml_config(tmp, out="5"))
    if res.code == 2 or res.escaped is not None:
        return res
    must_succeed(res)
    return (tmp / "5" / "config.json").is_file(), f"run directories {sorted(p.name for p in tmp.iterdir())}"


@case("config-lr-1e-3", CFG, "YAML `lr: 1e-3` (read by YAML as a string)", expected="the run uses lr 0.001")
def _(tmp):
    must_succeed(_cfg_cli(tmp, yaml_config(tmp, lr="1e-3")))
    lr = json.loads((tmp / "run" / "config.json").read_text())["train"]["lr"]
    return lr == 0.001, f"saved lr {lr!r}"


@case("config-progress-no", CFG, "YAML `progress: \"no\"`", expected="no progress bar (progress False)")
def _(tmp):
    res = must_succeed(_cfg_cli(tmp, yaml_config(tmp, progress='"no"')))
    saved = json.loads((tmp / "run" / "config.json").read_text())["train"]["progress"]
    return saved is False and "it/s" not in res.err, f"saved progress {saved!r}"


@case("config-epochs-string", CFG, "YAML `epochs: \"2\"`", expected="2 epochs")
def _(tmp):
    must_succeed(_cfg_cli(tmp, yaml_config(tmp, epochs='"2"', patience="10")))
    n = history_len(tmp / "run" / "history.json")
    return n == 2, f"{n} epochs run"


@case("config-resume-no", CFG, "YAML `resume: \"no\"`", expected="a fresh run, not a resume")
def _(tmp):
    must_succeed(_cfg_cli(tmp, yaml_config(tmp, resume='"no"')))
    return (tmp / "run" / "checkpoint.pt").is_file(), "trained"


@case("config-dashed-keys", CFG, "YAML `batch-size: 128` (flag spelling)", expected="taken as batch_size 128")
def _(tmp):
    path = yaml_config(tmp, batch_size=None, **{"batch-size": "128"})
    must_succeed(_cfg_cli(tmp, path))
    bs = json.loads((tmp / "run" / "config.json").read_text())["train"]["batch_size"]
    return bs == 128, f"batch_size {bs}"


@case("config-flags-win", CFG, "YAML `epochs: 3` with `--epochs 1`", expected="the flag wins: 1 epoch")
def _(tmp):
    must_succeed(_cfg_cli(tmp, yaml_config(tmp, epochs="3", patience="10"), "--epochs", "1"))
    n = history_len(tmp / "run" / "history.json")
    return n == 1, f"{n} epochs run"


@case("config-empty-file", CFG, "an empty config file plus tiny flags", expected="trains with the flags")
def _(tmp):
    (tmp / "empty.yaml").write_text("")
    must_succeed(cli("train", "--config", tmp / "empty.yaml", "--out", tmp / "run", *TINY_FLAGS))
    return (tmp / "run" / "checkpoint.pt").is_file(), "trained"


# ==========================================================================================================
# 15. Data files: truncated text, zero-byte, corrupt .gz, duplicate headers, odd encodings
# ==========================================================================================================

FILES = "data files"
TRUNC = "truncated text input"


@case("criteo-truncated-last-line", TRUNC, "Criteo train.txt cut mid-line (line 41 has 11 of 40 columns)",
      error=E.InputFileError, names=("train.txt", "line 41"))
def _(tmp):
    rows = criteo_rows(40)
    write_criteo(tmp, "\n".join(rows) + "\n" + "\t".join(rows[0].split("\t")[:11]))
    d = load_criteo(tmp)
    return f"read {len(d.train) + len(d.valid) + len(d.test)} rows"


@case("criteo-short-middle-line", TRUNC, "Criteo train.txt whose line 5 has 20 columns", error=E.InputFileError,
      names=("train.txt", "line 5"))
def _(tmp):
    rows = criteo_rows(40)
    rows[4] = "\t".join(rows[4].split("\t")[:20])
    write_criteo(tmp, "\n".join(rows) + "\n")
    d = load_criteo(tmp)
    return f"read {len(d.train) + len(d.valid) + len(d.test)} rows"


@case("criteo-long-middle-line", TRUNC, "Criteo train.txt whose line 5 has 41 columns", error=E.InputFileError,
      names=("train.txt", "line 5"))
def _(tmp):
    rows = criteo_rows(40)
    rows[4] += "\textra"
    write_criteo(tmp, "\n".join(rows) + "\n")
    load_criteo(tmp)


@case("criteo-non-numeric-int", FILES, "Criteo train.txt with 'abc' in I1 on line 3", error=E.InputFileError,
      names=("train.txt", "I1"))
def _(tmp):
    rows = criteo_rows(40)
    cells = rows[2].split("\t")
    cells[1] = "abc"
    rows[2] = "\t".join(cells)
    write_criteo(tmp, "\n".join(rows) + "\n")
    load_criteo(tmp)


@case("criteo-bad-label", FILES, "Criteo train.txt with label 'x' on line 2", error=E.InputFileError,
      names=("train.txt", "label"))
def _(tmp):
    rows = criteo_rows(40)
    rows[1] = "x" + rows[1][1:]
    write_criteo(tmp, "\n".join(rows) + "\n")
    load_criteo(tmp)


@case("criteo-inf-int", INF, "Criteo train.txt with 'inf' in I1, then fit", error=E.FgraphError, names=("I1", "inf"))
def _(tmp):
    rows = criteo_rows(40)
    for i in (2, 7, 11, 30):
        cells = rows[i].split("\t")
        cells[1] = "inf"
        rows[i] = "\t".join(cells)
    write_criteo(tmp, "\n".join(rows) + "\n")
    d = load_criteo(tmp)
    enc = FieldEncoder(d.schema).fit(d.train)
    return f"vocabulary of I1 {enc.vocabularies_['I1'][:8]}"


add("criteo-zero-byte", FILES, "zero-byte Criteo train.txt", lambda tmp: (write_criteo(tmp, b""), load_criteo(tmp)),
    error=E.InputFileError, names=("train.txt",))
add("criteo-corrupt-gz", FILES, "Criteo train.txt.gz of random bytes",
    lambda tmp: (write_criteo(tmp, os.urandom(300), "train.txt.gz"), load_criteo(tmp)), error=E.InputFileError,
    names=("train.txt.gz",))
add("criteo-truncated-gz", FILES, "Criteo train.txt.gz cut in half",
    lambda tmp: (write_criteo(tmp, gzip.compress(("\n".join(criteo_rows(300)) + "\n").encode())[:1500],
                              "train.txt.gz"), load_criteo(tmp)), error=E.InputFileError, names=("train.txt.gz",))
add("criteo-empty-gz", FILES, "Criteo train.txt.gz holding nothing",
    lambda tmp: (write_criteo(tmp, "", "train.txt.gz", gz=True), load_criteo(tmp)), error=E.InputFileError,
    names=("train.txt.gz",))
add("criteo-plain-named-gz", FILES, "plain text named train.txt.gz",
    lambda tmp: (write_criteo(tmp, "\n".join(criteo_rows(40)) + "\n", "train.txt.gz"), load_criteo(tmp)),
    error=E.InputFileError, names=("train.txt.gz",))
add("criteo-path-missing", FILES, "`criteo(path='<no such file>')`",
    lambda tmp: load_dataset("criteo", path=tmp / "missing.txt"), error=E.InputFileNotFoundError,
    names=("missing.txt",))


@case("criteo-non-utf8", FILES, "Criteo train.txt with a Latin-1 byte in C3", error=E.InputFileError,
      names=("train.txt",), or_behaviour=True, expected="InputFileError naming the file, or all 40 rows read")
def _(tmp):
    rows = criteo_rows(40)
    cells = rows[3].split("\t")
    cells[16] = "caf\xe9"
    rows[3] = "\t".join(cells)
    write_criteo(tmp, ("\n".join(rows) + "\n").encode("latin-1"))
    d = load_criteo(tmp)
    n = len(d.train) + len(d.valid) + len(d.test)
    return n == 40, f"read {n} rows"


@case("criteo-crlf", FILES, "Criteo train.txt with Windows line ends", expected="the same rows, no '\\r' in C26")
def _(tmp):
    write_criteo(tmp, "\r\n".join(criteo_rows(40)) + "\r\n")
    d = load_criteo(tmp)
    full = pd.concat([d.train, d.valid, d.test])
    bad = full["C26"].astype(str).str.contains("\r").any()
    return len(full) == 40 and not bad, f"{len(full)} rows, '\\r' in C26: {bool(bad)}"


@case("criteo-trailing-blank-lines", FILES, "Criteo train.txt ending in blank lines", expected="40 rows")
def _(tmp):
    write_criteo(tmp, "\n".join(criteo_rows(40)) + "\n\n\n")
    d = load_criteo(tmp)
    n = len(d.train) + len(d.valid) + len(d.test)
    return n == 40, f"{n} rows"


def load_avazu(tmp: Path):
    return load_dataset("avazu", tmp / "data")


add("avazu-zero-byte", FILES, "zero-byte Avazu train.csv", lambda tmp: (write_avazu(tmp, b""), load_avazu(tmp)),
    error=E.InputFileError, names=("train.csv",))
add("avazu-corrupt-gz", FILES, "Avazu train.csv.gz of random bytes",
    lambda tmp: (write_avazu(tmp, os.urandom(300), "train.csv.gz"), load_avazu(tmp)), error=E.InputFileError,
    names=("train.csv.gz",))
add("avazu-no-click-column", FILES, "Avazu train.csv without a 'click' column",
    lambda tmp: (write_avazu(tmp, "id,hour,C1\n1,14102100,5\n"), load_avazu(tmp)), error=E.InputFileError,
    names=("train.csv", "click"))


@case("avazu-truncated-last-line", TRUNC, "Avazu train.csv cut mid-line (line 42 has 3 of 7 columns)",
      error=E.InputFileError, names=("train.csv", "line 42"))
def _(tmp):
    rows = avazu_rows(40)
    write_avazu(tmp, AVAZU_HEADER + "\n" + "\n".join(rows) + "\n" + ",".join(rows[0].split(",")[:3]))
    d = load_avazu(tmp)
    return f"read {len(d.train) + len(d.valid) + len(d.test)} rows"


@case("avazu-duplicate-header", "duplicate columns", "Avazu train.csv whose header names C1 twice",
      error=E.InputFileError, names=("train.csv", "C1"))
def _(tmp):
    header = AVAZU_HEADER.replace("site_id", "C1")
    write_avazu(tmp, header + "\n" + "\n".join(avazu_rows(40)) + "\n")
    d = load_avazu(tmp)
    return f"columns {list(d.train.columns)}"


@case("avazu-bad-hour", FILES, "Avazu rows whose hour is not YYMMDDHH", expected="hour_of_day and weekday missing "
      "for those rows, others intact")
def _(tmp):
    rows = avazu_rows(40)
    rows = [r.replace(",141021", ",999999", 1) if i < 5 else r for i, r in enumerate(rows)]
    write_avazu(tmp, AVAZU_HEADER + "\n" + "\n".join(rows) + "\n")
    d = load_avazu(tmp)
    full = pd.concat([d.train, d.valid, d.test])
    n_missing = int(full["hour_of_day"].isna().sum())
    return n_missing == 5 and len(full) == 40, f"{n_missing} rows with a missing hour_of_day of {len(full)}"


def load_frappe(tmp: Path):
    return load_dataset("frappe", tmp / "data")


add("frappe-corrupt-gz", FILES, "Frappe validation file of random bytes",
    lambda tmp: (write_frappe(tmp, valid=os.urandom(200)), load_frappe(tmp)), error=E.InputFileError,
    names=("frappe.validation.libfm.gz",))
add("frappe-zero-byte-test", FILES, "zero-byte Frappe test file",
    lambda tmp: (write_frappe(tmp, test=b""), load_frappe(tmp)), error=E.InputFileError,
    names=("frappe.test.libfm.gz",))
add("frappe-truncated-raw", FILES, "Frappe raw log (frappe.csv.gz) cut short",
    lambda tmp: (write_frappe(tmp, raw=gzip.compress((FRAPPE_RAW * 50).encode())[:60]), load_frappe(tmp)),
    error=E.InputFileError, names=("frappe.csv.gz",))
add("frappe-raw-missing-column", FILES, "Frappe raw log without the 'city' column",
    lambda tmp: (write_frappe(tmp, raw=gzip.compress(FRAPPE_RAW.replace("\tcity", "\ttown").encode())),
                 load_frappe(tmp)), error=E.InputFileError, names=("frappe.csv.gz", "city"))
add("frappe-libfm-bad-value", FILES, "Frappe validation line with a feature value 2 ('0:2')",
    lambda tmp: (write_frappe(tmp, valid=gzip.compress((FRAPPE_ROW0.replace("0:1", "0:2", 1) + "\n").encode())),
                 load_frappe(tmp)), error=E.InputFileError, names=("frappe.validation.libfm.gz",))


@case("movielens-zero-byte", FILES, "MovieLens folder whose u.data.gz is an empty gzip", error=E.InputFileError,
      names=("u.data.gz",))
def _(tmp):
    folder = tmp / "data" / "movielens_100k"
    folder.mkdir(parents=True)
    (folder / "u.data.gz").write_bytes(gzip.compress(b""))
    for name in ("u.user", "u.item", "u.genre"):
        (folder / name).write_text("")
    load_dataset("movielens100k", tmp / "data")


# ==========================================================================================================
# 16. More of an attacker's and a tired user's inputs
# ==========================================================================================================

OWN = "own: attacker/tired user"

add("schema-label-is-field", OWN, "a Schema whose label 'clicked' is also a field",
    lambda tmp: Schema((categorical("clicked"),), label="clicked"), error=E.ConfigError, names=("clicked",))
add("field-empty-name", OWN, "`categorical('')`", lambda tmp: categorical(""), error=E.ConfigError,
    names=(("name", "''"),))
add("loader-batch-size-2.5", OWN, "`FieldLoader(data, batch_size=2.5)` (truncated to 2?)",
    lambda tmp: __import__("fgraph.data", fromlist=["FieldLoader"]).FieldLoader(tiny_encoded(100)[2], batch_size=2.5),
    error=E.ConfigError, names=("batch_size", "2.5"))
add("predict-empty-table", OWN, "`Trainer.predict` on a table of 0 rows",
    lambda tmp: _trainer_on(lambda tr: tr.take(torch.arange(0)), "predict"), error=E.DataError,
    names=(("empty", "0 rows", "no rows"),))
add("evaluate-unlabelled", OWN, "`Trainer.evaluate` on data without labels",
    lambda tmp: _trainer_on(lambda tr: EncodedData(tr.ids, tr.values, tr.bags, None, tr.space, "label"), "evaluate"),
    error=E.DataError, names=("label",))
add("api-divergence-factor-negative", OWN, "`train(divergence_factor=-1)`", _api_bad(divergence_factor=-1),
    error=E.ConfigError, names=("divergence_factor", "-1"))
add("api-seed-negative", OWN, "`train(seed=-1)`", _api_bad(seed=-1), error=E.ConfigError, names=("seed", "-1"))
add("dataset-seed-negative", OWN, "`dataset_options={'seed': -1}` (synthetic)",
    lambda tmp: tiny_train(tmp, dataset_options={"n_samples": 600, "seed": -1}), error=E.ConfigError,
    names=("seed", "-1"))
add("dataset-n-samples-600.5", OWN, "`dataset_options={'n_samples': 600.5}` (truncated?)",
    lambda tmp: tiny_train(tmp, dataset_options={"n_samples": 600.5}), error=E.ConfigError,
    names=("n_samples", "600.5"))
add("criteo-nrows-2.5", OWN, "`criteo(path=..., nrows=2.5)`",
    lambda tmp: load_dataset("criteo", path=write_criteo(tmp, "\n".join(criteo_rows(40)) + "\n"), nrows=2.5),
    error=E.ConfigError, names=("nrows", "2.5"))
add("criteo-chunksize-0", OWN, "`criteo(path=..., chunksize=0)`",
    lambda tmp: load_dataset("criteo", path=write_criteo(tmp, "\n".join(criteo_rows(40)) + "\n"), chunksize=0),
    error=E.ConfigError, names=("chunksize", "0"))
add("criteo-treatment-unknown", OWN, "`criteo(path=..., numeric_treatment='logs')`",
    lambda tmp: load_dataset("criteo", path=write_criteo(tmp, "\n".join(criteo_rows(40)) + "\n"),
                             numeric_treatment="logs"), error=E.ConfigError, names=("logs",))
add("encoder-save-missing-dir", OWN, "`encoder.save('<no such dir>/enc.json')`",
    lambda tmp: encoder([categorical("city")], pd.DataFrame({"city": ["a"]})).save(tmp / "no_dir" / "enc.json"),
    error=E.FgraphError, names=("no_dir",))
for _argv, _names in ((("--epochs", "0"), ("epochs", "0")), (("--batch-size", "0"), ("batch_size", "0")),
                      (("--seed", "99999999999999999999"), ("seed", "99999999999999999999"))):
    cli_case("cli" + "-".join(_argv).replace("--", "-"), OWN, "`fgraph train " + " ".join(_argv) + "`", error=True,
             names=_names)(_cli_flags(*_argv))


def _trainer_on(make, what):
    _, enc, tr, _ = tiny_encoded()
    t = Trainer(build_model("fm", enc.space_, embed_dim=4), TrainConfig(epochs=1, batch_size=256, progress=False))
    data = make(tr)
    return f"returned {getattr(t, what)(data)!r}"[:200]


@case("criteo-with-header", OWN, "Criteo train.txt whose first line is a header", error=E.InputFileError,
      names=("train.txt", "line 1"))
def _(tmp):
    write_criteo(tmp, "\t".join(["label"] + [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)])
                 + "\n" + "\n".join(criteo_rows(40)) + "\n")
    load_criteo(tmp)


cli_case("config-is-directory", OWN, "`--config` naming a directory", error=True, names=("conf_dir",))(
    lambda tmp: ((tmp / "conf_dir").mkdir(), cli("train", "--config", tmp / "conf_dir", "--no-progress"))[1])
cli_case("config-json-duplicate-key", OWN, "JSON config with \"epochs\" twice", error=True, names=("epochs",))(
    _bad_config('{"epochs": 1, "batch_size": 256, "epochs": 50, "threads": 1, "progress": false, '
                '"dataset_options": {"n_samples": 600}}', "dup.json"))
cli_case("config-python-tag", OWN, "YAML with a `!!python/object/apply:os.system` tag", error=True,
         names=("evil.yaml",), intact=_no_marker)(
    lambda tmp: _bad_config(f"epochs: !!python/object/apply:os.system ['touch {tmp / 'pwned'}']\n", "evil.yaml")(tmp))


@case("rundir-foreign-config-json", OWN, "`--out` a project folder holding the user's own config.json",
      error=E.RunDirectoryError, names=("project",),
      intact=lambda tmp: ((tmp / "project" / "config.json").read_text() == '{"mine": true}', "user's config.json"))
def _(tmp):
    (tmp / "project").mkdir()
    (tmp / "project" / "config.json").write_text('{"mine": true}')
    tiny_train(tmp, out=str(tmp / "project"))


@case("rundir-symlink-to-run", OWN, "`--out` a symlink to an existing run", error=E.RunDirectoryError,
      names=(("alias", "first_run"),), intact=_first_run_intact)
def _(tmp):
    _make_first_run(tmp)
    (tmp / "alias").symlink_to(tmp / "first_run", target_is_directory=True)
    tiny_train(tmp, out=str(tmp / "alias"), model="lr")


@case("rundir-resume-while-running", OWN, "resume a run that another process is still training",
      error=E.RunDirectoryError, names=("busy",), timeout=120,
      intact=lambda tmp: _config_and_checkpoint_agree(tmp / "busy", "fm"))
def _(tmp):
    with training_in_background(tmp / "busy", "fm"):
        fg.train(**tiny_kwargs(tmp, out=str(tmp / "busy"), epochs=3000, batch_size=64, patience=100000,
                               dataset_options={"n_samples": 4000}, resume=True))


# ==========================================================================================================
# Running from the command line
# ==========================================================================================================

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the bad-input catalogue of issue 10 and print the verdicts.")
    parser.add_argument("--only", action="append", metavar="PATTERN",
                        help="run only cases whose id or class contains PATTERN (or matches it as a glob)")
    parser.add_argument("--out", metavar="FILE", help="also write the Markdown report to FILE")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any case is raw or silent")
    parser.add_argument("--docs", metavar="FILE",
                        help="rewrite the generated catalogue section of FILE (docs/errors.md) from this run")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    cases = select(args.only)
    if args.list:
        for c in cases:
            print(f"{c.id:<45} {c.cls:<32} {c.input}")
        return 0
    started = time.perf_counter()
    results, skipped = run_cases(cases, progress=None if args.quiet else sys.stderr)
    text = report(results, skipped, time.perf_counter() - started)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.docs:
        write_docs(Path(args.docs), results, time.perf_counter() - started)
    if args.json:
        Path(args.json).write_text(json.dumps(
            [{"id": r.case.id, "class": r.case.cls, "input": r.case.input, "expected": r.case.expectation(),
              "verdict": r.verdict, "message": r.message, "seconds": round(r.seconds, 2)} for r in results],
            indent=1))
    if args.strict and any(r.verdict in ("raw", "silent") for r in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
