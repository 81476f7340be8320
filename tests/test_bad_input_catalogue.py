"""The bad-input catalogue of issue 10 (``benchmarks/bad_inputs.py``): no bad input may end in a raw traceback
or be accepted with its data silently changed. Also tests of the catalogue's harness itself, so that a
verdict of "clear" or "documented" can be trusted.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest

from fgraph.errors import ConfigError, DataError, FgraphError

ROOT = Path(__file__).resolve().parents[1]


def _load_catalogue():
    spec = importlib.util.spec_from_file_location("fgraph_bad_inputs", ROOT / "benchmarks" / "bad_inputs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


bad = _load_catalogue()


def verdict_of(run, **spec):
    """Run one throw-away case through the harness; returns ``(verdict, message)``."""
    result = bad.run_case(bad.Case("fake", "harness", "a fake input", run, **spec))
    return result.verdict, result.message


# -- the catalogue --------------------------------------------------------------------------------------------

def test_no_bad_input_is_raw_or_silent():
    results, _ = bad.run_cases(bad.CASES)
    offending = [f"{r.case.id} ({r.verdict}): {r.message}" for r in results if r.verdict in ("raw", "silent")]
    assert not offending, f"{len(offending)} of {len(results)} cases are raw or silent:\n" + "\n".join(offending)


def test_the_catalogue_covers_the_issue():
    ids = [c.id for c in bad.CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    assert len(ids) >= 100
    classes = {c.cls for c in bad.CASES}
    for needed in ("large integer ids", "±inf in numeric columns", "category type change", "per-field options",
                   "config values", "regularisation/clipping", "divergence/NaN", "run directories",
                   "checkpoint/encoder consistency", "FIVES resume", "truncated text input", "duplicate columns",
                   "corrupt encoder.json", "bad checkpoint", "config file", "CLI options", "model options",
                   "ids past vocabulary", "kept behaviour", "data files"):
        assert needed in classes, needed


# -- the harness ------------------------------------------------------------------------------------------

def test_a_raw_key_error_is_raw():
    verdict, message = verdict_of(lambda tmp: {}["price"], error=DataError, names=("price",))
    assert verdict == "raw" and message.startswith("KeyError")


def test_a_failing_behaviour_check_is_silent():
    verdict, message = verdict_of(lambda tmp: (False, "two ids merged"))
    assert (verdict, message) == ("silent", "two ids merged")


def test_a_passing_behaviour_check_is_documented_and_an_exception_in_it_raw():
    assert verdict_of(lambda tmp: True)[0] == "documented"
    assert verdict_of(lambda tmp: 1 / 0)[0] == "raw"


def test_the_expected_error_must_name_the_input():
    def raises(message):
        def run(tmp):
            raise ConfigError(message)
        return run

    assert verdict_of(raises("option 'epochs' must be an integer, got 2.5"), error=ConfigError,
                      names=("epochs", "2.5"))[0] == "clear"
    verdict, message = verdict_of(raises("bad value"), error=ConfigError, names=("epochs",))
    assert verdict == "raw" and "'epochs'" in message
    # Alternatives: any one of them will do.
    assert verdict_of(raises("the loss is NaN"), error=FgraphError, names=(("nan", "NaN"),))[0] == "clear"
    # Another fgraph class than the expected one is raw.
    assert verdict_of(raises("epochs"), error=DataError, names=("epochs",))[0] == "raw"


def test_no_error_where_one_is_due_is_silent_unless_the_behaviour_is_allowed():
    assert verdict_of(lambda tmp: "accepted", error=ConfigError, names=("x",)) == \
        ("silent", "accepted without an error: accepted")
    assert verdict_of(lambda tmp: (True, "taken as [3]"), error=ConfigError, names=("x",),
                      or_behaviour=True) == ("documented", "taken as [3]")
    assert verdict_of(lambda tmp: (False, "taken as 'abc'"), error=ConfigError, names=("x",),
                      or_behaviour=True)[0] == "silent"


def test_data_changed_after_a_clear_error_is_silent(tmp_path):
    def run(tmp):
        (tmp / "checkpoint.pt").write_text("overwritten")
        raise FgraphError("refused checkpoint.pt")

    verdict, message = verdict_of(run, error=FgraphError, names=("checkpoint.pt",),
                                  intact=lambda tmp: (False, "checkpoint.pt changed"))
    assert verdict == "silent" and "checkpoint.pt changed" in message


def test_warnings_are_matched_by_class_and_names():
    import warnings

    def warns(tmp):
        warnings.warn("column 'city': 50 of 50 values unknown", UserWarning)

    assert verdict_of(warns, warn=UserWarning, names=("city",))[0] == "documented"
    assert verdict_of(warns, warn=UserWarning, names=("town",))[0] == "silent"
    assert verdict_of(lambda tmp: None, warn=UserWarning, names=("city",))[0] == "silent"


def test_command_line_verdicts():
    Cli = bad.CliResult
    assert verdict_of(lambda tmp: Cli(2, "", "fgraph: error: option 'lr' must be finite, got inf\n"),
                      error=FgraphError, names=("lr", "inf"))[0] == "clear"
    argparse_lines = "usage: fgraph train [-h]\nfgraph train: error: argument --epochs: invalid int value: '2.5'\n"
    assert verdict_of(lambda tmp: Cli(2, "", argparse_lines), error=FgraphError, names=("epochs", "2.5"))[0] == "clear"
    assert verdict_of(lambda tmp: Cli(2, "", "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n"),
                      error=FgraphError, names=("x",))[0] == "raw"
    assert verdict_of(lambda tmp: Cli(1, "", "fgraph: config file a.yaml does not exist\n"),
                      error=FgraphError, names=("a.yaml",))[0] == "raw"
    assert verdict_of(lambda tmp: Cli(2, "", "fgraph: error: bad\nmore\n"), error=FgraphError)[0] == "raw"
    assert verdict_of(lambda tmp: Cli(0, "test auc 0.5", ""), error=FgraphError, names=("x",))[0] == "silent"
    assert verdict_of(lambda tmp: Cli(-1, "", "", escaped=KeyError("x")), error=FgraphError)[0] == "raw"


def test_cli_helper_catches_system_exit_and_escaping_exceptions():
    res = bad.cli("train", "--epochs", "2.5")
    assert res.code == 2 and "invalid int value" in res.err and res.escaped is None
    res = bad.cli("--help")
    assert res.code == 0 and "usage:" in res.out


def test_each_case_runs_in_its_own_directory_and_restores_the_working_directory():
    before = os.getcwd()
    seen = []

    def run(tmp):
        seen.append((Path.cwd(), tmp))
        (tmp / "litter.txt").write_text("x")
        return True

    assert verdict_of(run)[0] == "documented"
    cwd, tmp = seen[0]
    assert cwd == tmp and os.getcwd() == before and not tmp.exists()


def test_a_hanging_case_times_out_as_raw():
    started = time.perf_counter()
    verdict, message = verdict_of(lambda tmp: time.sleep(5), timeout=1)
    assert verdict == "raw" and "timed out" in message and time.perf_counter() - started < 4


def test_report_and_command_line(tmp_path, monkeypatch, capsys):
    fake = [bad.Case("fake-ok", "harness", "fine", lambda tmp: True),
            bad.Case("fake-silent", "harness", "merged ids", lambda tmp: (False, "merged"))]
    monkeypatch.setattr(bad, "CASES", fake)
    out = tmp_path / "report.md"
    assert bad.main(["--quiet", "--out", str(out)]) == 0
    text = out.read_text()
    assert "1 documented, 0 raw, 1 silent" in text and "| `fake-silent` |" in text
    assert "## Raw or silent" in text and "merged" in text
    assert bad.main(["--quiet", "--strict"]) == 1
    assert bad.main(["--quiet", "--strict", "--only", "fake-ok"]) == 0
    capsys.readouterr()
    assert bad.main(["--list", "--only", "silent"]) == 0
    listed = capsys.readouterr().out
    assert "fake-silent" in listed and "fake-ok" not in listed
