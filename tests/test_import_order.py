"""The package's import order (pyproject.toml's [tool.importlinter] contracts), checked with import-linter: the
package keeps them, and a copy of it with planted violations -- a lazy import inside a function among them --
breaks exactly the contracts it should."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

importlinter = pytest.importorskip(
    "importlinter", reason="import-linter is not installed (it is in fgraph's test extra: pip install -e .[test])")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"


def contracts() -> list[dict]:
    """The contracts of pyproject.toml, as import-linter reads them (``id``, ``name``, ...)."""
    from importlinter.api import read_configuration

    return read_configuration(str(CONFIG))["contracts_options"]


def lint_imports(config: Path, cwd: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` of this interpreter's import-linter on ``config``, run from ``cwd`` (whose ``fgraph``
    package is the one analysed), without a cache."""
    from importlinter.cli import lint_imports_command

    # import-linter 2.x takes the file as an argument; the oldest 2.x releases only as --config.
    positional = any(p.name == "config_files" for p in lint_imports_command.params)
    args = [str(config)] if positional else ["--config", str(config)]
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "--no-cache", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_the_package_keeps_its_import_contracts():
    result = lint_imports(CONFIG, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    names = [c["name"] for c in contracts()]
    assert {c["id"] for c in contracts()} >= {"layers", "models-know-no-training", "models-draw-no-pictures"}
    for name in names:
        assert f"{name} KEPT" in " ".join(result.stdout.split()), (name, result.stdout)
    assert f"Contracts: {len(names)} kept, 0 broken." in result.stdout


#: planted into a copy of the package: (file, code appended, the contract it breaks, the report's words)
PLANTED = [
    # A lazy import in a function body: the kind a layer violation likes to hide in.
    ("models/fm.py", "\n\ndef _planted():\n    from ..api import load_run\n    return load_run\n",
     "layers", "fgraph.models is not allowed to import fgraph.api"),
    ("nn/records.py", "\nfrom ..train import trainer as _planted_trainer  # noqa\n",
     "models-know-no-training", "fgraph.nn is not allowed to import fgraph.train"),
    ("graph/adjacency.py", "\nimport networkx as _planted_nx  # noqa\n",
     "models-draw-no-pictures", "fgraph.graph is not allowed to import networkx"),
]


def test_planted_violations_break_the_contracts(tmp_path):
    """The check can fail: each planted import is reported, by the contract it breaks, and nothing else is."""
    shutil.copytree(ROOT / "fgraph", tmp_path / "fgraph", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(CONFIG, tmp_path / "pyproject.toml")
    clean = lint_imports(tmp_path / "pyproject.toml", tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr     # the copy is the package, unchanged
    for path, code, _, _ in PLANTED:
        with open(tmp_path / "fgraph" / path, "a", encoding="utf-8") as fh:
            fh.write(code)
    result = lint_imports(tmp_path / "pyproject.toml", tmp_path)
    report = " ".join(result.stdout.split())
    assert result.returncode != 0, report
    by_id = {c["id"]: c["name"] for c in contracts()}
    for path, _, contract, words in PLANTED:
        assert f"{by_id[contract]} BROKEN" in report, (contract, report)
        assert words in report, (words, report)
        assert f"fgraph.{path[:-3].replace('/', '.')}" in report, (path, report)
    assert f"Contracts: 0 kept, {len(by_id)} broken." in report
