"""`fgraph demo-table` and the batch size a run on a user's file gets."""
import pandas as pd
import pytest

from fgraph.api import _file_batch_size, write_demo_table
from fgraph.cli import main
from fgraph.data.datasets.demo import TAGS, demo_table
from fgraph.data.files import infer_schema, read_file
from fgraph.errors import ConfigError
from fgraph.train import TrainConfig


def test_columns_kinds_and_seed():
    a, b, c = demo_table(500, seed=1), demo_table(500, seed=1), demo_table(500, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert list(a.columns) == ["user", "item", "device", "hour", "price", "tags", "click"]
    assert set(a.click.unique()) == {0, 1} and a.hour.between(0, 23).all() and (a.price > 0).all()
    assert all(set(cell.split("|")) <= set(TAGS) for cell in a.tags)
    kinds = {f.name: f.kind for f in infer_schema(a, "click")}
    assert kinds == {"user": "categorical", "item": "categorical", "device": "categorical", "hour": "numeric",
                     "price": "numeric", "tags": "multi"}


@pytest.mark.parametrize("rows", [5, 0, 2.5, True, "100"])
def test_bad_rows_are_refused(rows):
    with pytest.raises(ConfigError, match="rows must be an integer >= 10"):
        demo_table(rows)


def test_cli_writes_csv_and_parquet_and_never_overwrites(tmp_path, capsys):
    out = tmp_path / "clicks.csv"
    assert main(["demo-table", str(out), "--rows", "200"]) == 0
    frame = read_file(out)
    assert len(frame) == 200 and "click" in frame
    before = out.read_bytes()
    assert main(["demo-table", str(out), "--rows", "300"]) == 2
    assert "exists; nothing was written over it" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["demo-table", str(out), "--rows", "300", "--overwrite"]) == 0 and len(read_file(out)) == 300
    pq = write_demo_table(tmp_path / "clicks.parquet", rows=50)
    pd.testing.assert_frame_equal(pd.read_parquet(pq), demo_table(50), check_dtype=False)
    with pytest.raises(ConfigError, match="suffix"):
        write_demo_table(tmp_path / "clicks.xlsx")


@pytest.mark.parametrize("rows, size", [(500, 64), (12_800, 128), (200_000, 1024), (10_000_000, 4096)])
def test_file_batch_size(rows, size):
    """The largest power of two <= rows / 100, between 64 and 4096: about a hundred steps an epoch."""
    config = _file_batch_size(TrainConfig(), rows)
    assert config.batch_size == size
    assert size == 64 or rows / config.batch_size >= 100
    assert size == 4096 or rows / config.batch_size < 200


def test_a_file_run_keeps_a_batch_size_it_was_given(tmp_path):
    from fgraph.api import train

    write_demo_table(tmp_path / "t.csv", rows=400)
    run = train("lr", data=tmp_path / "t.csv", label="click", epochs=1, out=tmp_path / "a", progress=False)
    assert run.trainer.config.batch_size == 64
    run = train("lr", data=tmp_path / "t.csv", label="click", epochs=1, batch_size=32, out=tmp_path / "b",
                progress=False)
    assert run.trainer.config.batch_size == 32


def test_help_states_the_file_batch_size_rule(capsys):
    from fgraph.api import FILE_BATCH_RANGE

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    low, high = FILE_BATCH_RANGE
    assert f"with --data FILE: the largest power of two at most the training rows / 100, from {low} to {high}" in text
