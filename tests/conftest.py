"""Test-session settings shared by every test file."""
import os


def pytest_configure(config):
    """One torch thread per test process when pytest-xdist runs several: two processes with two
    threads each on two cores spin-wait on each other and run many times slower."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)
