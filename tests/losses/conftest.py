"""Many tiny tensors: every test here runs on one torch thread (the ``one_thread`` fixture of tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield
