"""Every code block of README.md and docs/**/*.md runs as written.

The blocks are collected and run with pytest-markdown-docs' own machinery (its Markdown parser, its
``extract_fence_tests`` and its runners), from this ordinary test module, so a plain ``pytest`` from the
repository root runs them (``testpaths = ["tests"]`` never reaches the Markdown files themselves).

What runs, by the fence's info string:

* ````python```: the block runs (the plugin's options hold: ``continuation`` runs it after the previous
  Python block of the same file, ``fixture:NAME`` puts fixture ``NAME`` in its namespace).
* ````bash``` / ````sh```: every command line runs, and must be an ``fgraph ...`` command; it runs in process
  (``fgraph.cli.main``) and must exit with status 0 (``--help`` included). Lines ending in ``\\`` continue.
* ````yaml file=NAME``` / ````json file=NAME```: written as ``NAME`` into the working directory of every later
  block of the same file (e.g. a config file that the next ``fgraph train --config NAME`` reads).
* ````text```, ````yaml``` / ````json``` without ``file=``: shown, not run.
* ``notest`` (any language): illustrative, not run; the line above the fence must say why, as
  ``<!-- notest: the reason -->`` (a real-data training of an hour, an excerpt of fgraph's own source...).
* ``dataset:NAME`` (Python or shell): the block needs data set ``NAME``'s files and is skipped, saying so, when
  they are absent.

Each block runs in a fresh temporary working directory (so ``runs/...`` never lands in the repository), with
a time limit of :data:`BLOCK_LIMIT_S` seconds: a block meant to run uses the synthetic data set and a
one-epoch run, longer ones are ``notest``.
"""
from __future__ import annotations

import contextlib
import io
import re
import shlex
import signal
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytest_markdown_docs._runners import get_runner
from pytest_markdown_docs.definitions import FenceTestDefinition
from pytest_markdown_docs.plugin import extract_fence_tests, pytest_markdown_docs_markdown_it

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: Languages a fence may name; every fence names one (an indented code block is refused too).
LANGUAGES = {"python", "bash", "sh", "yaml", "json", "text"}
SHELL = {"bash", "sh"}
#: Options a fence may carry besides its language (a typo such as ``no-test`` must not pass unnoticed).
OPTION_PATTERNS = {
    "python": r"notest|continuation|fixture:\w+|dataset:\w+|retry:\d+",
    "bash": r"notest|dataset:\w+",
    "sh": r"notest|dataset:\w+",
    "yaml": r"notest|file=[\w.-]+",
    "json": r"notest|file=[\w.-]+",
    "text": r"",
}
NOTEST_REASON = re.compile(r"^<!--\s*notest:\s*\S.*-->\s*$")
#: seconds one block may run, a guard against a block that trains for real, not a speed test. The slowest
#: block (quickstart.md:16, two one-epoch trainings) took about 20 s with two trainings holding both cores,
#: and ran past the former 40 s with pytest as a third job (2026-12-07); 90 s leaves CI's noisy cores room.
BLOCK_LIMIT_S = 90


@dataclass
class Fence:
    path: Path
    line: int            # 1-based line of the opening fence
    lang: str
    options: list[str]
    code: str
    prev_line: str       # the nearest non-blank line above the fence

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


@dataclass
class Block:
    """One block to run: a Python fence (with the plugin's definition) or a shell fence."""

    fence: Fence
    python: FenceTestDefinition | None = None
    files: dict[str, str] = field(default_factory=dict)   # file=NAME blocks above it in the same document

    @property
    def datasets(self) -> list[str]:
        return [o.split(":", 1)[1] for o in self.fence.options if o.startswith("dataset:")]


def _fences(path: Path) -> tuple[list[Fence], list[int]]:
    """The fenced blocks of a Markdown file, and the lines of its indented code blocks."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    fences, indented = [], []
    for token in pytest_markdown_docs_markdown_it().parse(text):
        if token.type == "code_block" and token.map:
            indented.append(token.map[0] + 1)
        if token.type != "fence" or not token.map:
            continue
        info = token.info.split()
        above = next((lines[i] for i in range(token.map[0] - 1, -1, -1) if lines[i].strip()), "")
        fences.append(Fence(path, token.map[0] + 1, info[0] if info else "", info[1:], token.content, above.strip()))
    return fences, indented


def _collect() -> list[Block]:
    blocks = []
    parser = pytest_markdown_docs_markdown_it()
    for path in DOCS:
        fences, _ = _fences(path)
        python = {t.start_line: t for t in extract_fence_tests(parser, path.read_text(encoding="utf-8"), 0, path)}
        files: dict[str, str] = {}
        for fence in fences:
            if "notest" in fence.options:
                continue
            named = [o.split("=", 1)[1] for o in fence.options if o.startswith("file=")]
            if named and fence.lang in ("yaml", "json"):
                files[named[0]] = fence.code
            elif fence.lang == "python":
                blocks.append(Block(fence, python[fence.line], dict(files)))
            elif fence.lang in SHELL:
                blocks.append(Block(fence, None, dict(files)))
    return blocks


BLOCKS = _collect()


class BlockTooSlow(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: int, where: str):
    """Interrupt a block that runs past ``seconds`` (where SIGALRM exists; elsewhere the limit is not enforced)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def stop(signum, frame):
        raise BlockTooSlow(f"{where} ran past {seconds} s: make it cheaper (the synthetic data set, --epochs 1) "
                           f"or mark it notest, saying why in a <!-- notest: ... --> line above it")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _dataset_found(name: str) -> bool:
    from fgraph.data.datasets import dataset_status

    rows = {r["name"]: r for r in dataset_status(None)}
    if name not in rows:
        raise AssertionError(f"dataset:{name} names no data-set builder; known: {sorted(rows)}")
    return bool(rows[name]["found"])


def _commands(code: str) -> list[tuple[int, list[str]]]:
    """``(line offset, argv)`` of every command of a shell block: ``\\`` continues a line, ``#`` starts a
    comment."""
    out, pending, start = [], "", 0
    for i, line in enumerate(code.splitlines()):
        if not pending:
            start = i
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        argv = shlex.split(pending + line, comments=True)
        pending = ""
        if argv:
            out.append((start, argv))
    return out


def _skip_without_data(block: Block) -> None:
    missing = [name for name in block.datasets if not _dataset_found(name)]
    if missing:
        pytest.skip(f"{block.fence.where} needs the {', '.join(missing)} data set files, which are not found "
                    f"(see `fgraph datasets`)")


def _run_shell(block: Block) -> None:
    from fgraph.cli import main

    for offset, argv in _commands(block.fence.code):
        where = f"{block.fence.path.relative_to(ROOT)}:{block.fence.line + 1 + offset}"
        if argv[0] != "fgraph":
            pytest.fail(f"{where} runs `{argv[0]}`; a shell block that the docs test runs holds `fgraph` commands "
                        f"only. Mark the block notest and say why in a <!-- notest: ... --> line above it",
                        pytrace=False)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv[1:])
            except SystemExit as e:   # argparse: --help exits 0, a bad flag 2
                code = e.code if isinstance(e.code, int) else 1
        if code != 0:
            pytest.fail(f"{where}: `{shlex.join(argv)}` exited with status {code}\n--- stdout\n{out.getvalue()[-3000:]}"
                        f"\n--- stderr\n{err.getvalue()[-3000:]}", pytrace=False)


def _run_python(block: Block, request) -> None:
    test = block.python
    # A module of its own, registered while the block runs: PyG's MessagePassing looks a layer's module up in
    # sys.modules to read its signature, so a layer class defined in a block needs one.
    name = f"markdown_block_{abs(hash(block.fence.where))}"
    module = types.ModuleType(name)
    module.__file__ = str(block.fence.path)
    namespace = module.__dict__
    sys.modules[name] = module
    try:
        _run_in(block, test, namespace, request)
    finally:
        sys.modules.pop(name, None)


def _run_in(block: Block, test: FenceTestDefinition, namespace: dict, request) -> None:
    for extra in request.config.hook.pytest_markdown_docs_globals():
        namespace.update(extra)
    for name in test.fixture_names:
        namespace[name] = request.getfixturevalue(name)
    runner = get_runner(test.runner_name)
    attempts = getattr(test, "max_retries", 0) + 1   # pytest-markdown-docs < 0.9.1 has no retries
    for attempt in range(attempts):
        try:
            runner.runtest(test, namespace)
            return
        except BlockTooSlow:
            raise
        except Exception:
            if attempt + 1 < attempts:
                continue
            # The plugin's report: the block with line numbers of the Markdown file, and its traceback.
            pytest.fail(runner.repr_failure(test, pytest.ExceptionInfo.from_exc_info(sys.exc_info())),
                        pytrace=False)


@pytest.mark.docs
@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.fence.where}-{b.fence.lang}" for b in BLOCKS])
def test_block_runs(block: Block, request, tmp_path, monkeypatch):
    _skip_without_data(block)
    monkeypatch.chdir(tmp_path)
    for name, text in block.files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    started = time.perf_counter()
    with _time_limit(BLOCK_LIMIT_S, block.fence.where):
        if block.python is not None:
            _run_python(block, request)
        else:
            _run_shell(block)
    request.node.user_properties.append(("seconds", round(time.perf_counter() - started, 2)))


# -- the rules of the harness itself --------------------------------------------------------------------------

def _all_fences():
    for path in DOCS:
        yield from _fences(path)[0]


def test_every_code_block_is_fenced_and_names_a_known_language():
    problems = []
    for path in DOCS:
        fences, indented = _fences(path)
        rel = path.relative_to(ROOT)
        problems += [f"{rel}:{line}: an indented code block; fence it and name its language" for line in indented]
        for f in fences:
            if f.lang not in LANGUAGES:
                problems.append(f"{f.where}: fence language {f.lang or '(none)'!r}; use one of {sorted(LANGUAGES)}")
                continue
            bad = [o for o in f.options if not re.fullmatch(OPTION_PATTERNS[f.lang], o)]
            if bad:
                problems.append(f"{f.where}: unknown fence option(s) {bad} for {f.lang}")
    assert not problems, "\n".join(problems)


def test_every_notest_block_says_why():
    silent = [f.where for f in _all_fences() if "notest" in f.options and not NOTEST_REASON.match(f.prev_line)]
    assert not silent, ("these notest blocks lack a <!-- notest: the reason --> line right above them:\n"
                        + "\n".join(silent))


def test_the_harness_finds_the_blocks():
    """A harness that collected nothing would pass; the docs hold both kinds of runnable block."""
    langs = [b.fence.lang for b in BLOCKS]
    assert langs.count("python") >= 5 and sum(lang in SHELL for lang in langs) >= 3, langs
    assert {b.fence.path.name for b in BLOCKS} >= {"README.md", "field_graph.md", "own_layer.md"}


def _fake_block(lang: str, code: str) -> Block:
    fence = Fence(ROOT / "docs" / "fake.md", 1, lang, [], code, "")
    python = FenceTestDefinition(code, (), 1, fence.path, None) if lang == "python" else None
    return Block(fence, python)


@pytest.mark.parametrize("lang, code, message", [
    ("bash", "fgraph datasets\nfgraph train --epochs 0\n", "`fgraph train --epochs 0` exited with status 2"),
    ("bash", "fgraph train --no-such-flag\n", "exited with status 2"),
    ("bash", "pip install fgraph\n", "runs `pip`"),
    ("python", "x = 1\nraise ValueError('wrong')\n", "ValueError: wrong"),
])
def test_a_block_that_fails_fails_its_test(lang, code, message, request, tmp_path, monkeypatch):
    """The harness itself: a failing command or statement is reported, naming what failed."""
    monkeypatch.chdir(tmp_path)
    block = _fake_block(lang, code)
    with pytest.raises(pytest.fail.Exception) as info:
        _run_python(block, request) if lang == "python" else _run_shell(block)
    assert message in str(info.value)


def test_a_block_that_needs_missing_data_is_skipped_saying_why(tmp_path, monkeypatch):
    monkeypatch.setenv("FGRAPH_DATA_DIR", str(tmp_path))     # an empty data directory
    block = _fake_block("python", "raise AssertionError('never runs')\n")
    block.fence.options.append("dataset:criteo")
    with pytest.raises(pytest.skip.Exception, match="needs the criteo data set files, which are not found"):
        _skip_without_data(block)


def test_shell_lines_are_split_as_a_shell_would():
    code = "fgraph train --model fm \\\n    --epochs 1   # one epoch\n\n# a comment\nfgraph datasets\n"
    assert _commands(code) == [(0, ["fgraph", "train", "--model", "fm", "--epochs", "1"]), (4, ["fgraph", "datasets"])]


# -- fixtures that blocks name (fixture:NAME) ----------------------------------------------------------------

@pytest.fixture(scope="module")
def _toy_table():
    """A small table with the README's columns: user, genres (``|``-separated), age, click."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 3000
    user = rng.integers(0, 60, n)
    genres = np.array(["action", "comedy", "drama", "horror", "romance"])
    picks = [("|".join(sorted(set(rng.choice(genres, rng.integers(1, 4)))))) for _ in range(n)]
    age = rng.integers(18, 70, n)
    logit = 0.8 * (user % 3 == 0) - 0.6 * np.array(["horror" in g for g in picks]) + 0.02 * (age - 40)
    click = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"user": user.astype(str), "genres": picks, "age": age, "click": click})
    return frame.iloc[:2000].reset_index(drop=True), frame.iloc[2000:2500].reset_index(drop=True), \
        frame.iloc[2500:].reset_index(drop=True)


@pytest.fixture
def train_df(_toy_table):
    return _toy_table[0].copy()


@pytest.fixture
def valid_df(_toy_table):
    return _toy_table[1].copy()


@pytest.fixture(name="test_df")
def _test_df(_toy_table):
    return _toy_table[2].copy()


@pytest.fixture(scope="module")
def _planted_frames():
    """Six categorical fields in three planted pairs (the synthetic set), as scikit-learn's X and y."""
    from fgraph.data.datasets import synthetic

    data = synthetic(n_samples=4000, n_fields=6, cardinality=6, triple=None, strength=2.0, seed=0)
    label = data.schema.label
    return {"X_train": data.train.drop(columns=[label]), "y_train": data.train[label].to_numpy(),
            "X_test": data.test.drop(columns=[label]), "y_test": data.test[label].to_numpy()}


@pytest.fixture(name="X_train")
def _x_train(_planted_frames):
    return _planted_frames["X_train"].copy()


@pytest.fixture(name="y_train")
def _y_train(_planted_frames):
    return _planted_frames["y_train"].copy()


@pytest.fixture(name="X_test")
def _x_test(_planted_frames):
    return _planted_frames["X_test"].copy()
