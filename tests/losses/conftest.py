"""Shared fixtures for the loss tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Run each loss test on one thread. The tensors are small: a second thread only adds synchronisation, and on a
    busy machine (another process on the other core) every parallel region stalls on it."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
