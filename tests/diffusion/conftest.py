"""The diffusion tests run many tiny forward passes; on a busy 2-core machine, torch's intra-op threads then spend
most of their time waiting on each other (measured 50x slower than one thread). One thread for these tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
