"""benchmarks/speed.py in its quick mode: it writes the page and the plot, with a row per model and ratios.

No timing is asserted: the figures depend on the machine and its load."""
import re
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import speed  # noqa: E402

MODELS = ["fm", "afm", "graphfm", "fignn", "fives"]


def _table(page: str, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table after ``heading``: its header row, then its body rows."""
    lines = page.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[start:end]]
    return [rows[0]] + rows[2:]


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_quick_run_writes_the_page_and_the_plot(tmp_path, restore_threads):
    out = tmp_path / "speed.md"
    # One thread: the quick run stays fast even when other jobs hold the cores.
    speed.main(["--quick", "--threads", "1", "--models", *MODELS, "--out", str(out)])
    assert out.exists() and (tmp_path / "speed_cost.png").stat().st_size > 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("# ") and "python -m benchmarks.speed --quick" in page
    assert f"fgraph {speed.fgraph.__version__}" in page and "ratios" in page

    header, *rows = _table(page, "## Ratios")
    assert sorted(r[0] for r in rows) == sorted(MODELS)
    ratio_columns = [i for i, name in enumerate(header) if name.startswith(("train n=", "inference n="))]
    assert len(ratio_columns) == 4
    for row in rows:
        for i in ratio_columns:
            value = float(row[i].split()[0])          # "1.23", or "1 (dense)" for a dense model
            assert value > 0, (row[0], header[i], row[i])
    assert next(r for r in rows if r[0] == "fm")[ratio_columns[0]] == "1 (dense)"

    header, *rows = _table(page, "## GraphFM width")
    assert len(rows) == 4 and all(float(r[header.index("train ÷ dense half")]) > 0 for r in rows)
    assert "docs/results.md" in page
    assert "not installed" in page or "| fgraph ÷ peer |" in page


def test_a_model_without_a_reference_is_refused():
    with pytest.raises(SystemExit):
        speed.parse(["--quick", "--models", "aim"])
