"""Fixtures shared by the model tests."""
import pytest
import torch

from fgraph.data import FieldEncoder
from fgraph.data.datasets import synthetic


@pytest.fixture(scope="session")
def planted():
    """8 categorical fields of 6 values; the label depends only on the pairs (f0, f1) and (f2, f3).

    Returns the data set (planted structure and Bayes AUC in ``meta``), the fitted encoder and the encoded
    train / valid / test splits.
    """
    data = synthetic(n_samples=30_000, n_fields=8, cardinality=6, pairs=((0, 1), (2, 3)), triple=None,
                     strength=2.0, seed=0)
    enc = FieldEncoder(data.schema).fit(data.train)
    return data, enc, {name: enc.transform(frame) for name, frame in
                       (("train", data.train), ("valid", data.valid), ("test", data.test))}


@pytest.fixture(scope="module")
def one_thread():
    """Run a module on one thread (small batches are faster so, and the machine's cores are shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_configure(config):
    # tests/test_docs.py: select the code blocks of README.md and docs/ with -m docs, leave them out with -m "not docs"
    config.addinivalue_line("markers", "docs: a code block of README.md or docs/ (tests/test_docs.py)")
