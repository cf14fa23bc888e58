"""Test-session settings shared by every test file."""
import os
import shutil
import tempfile

_CACHE: list[str] = []


def pytest_configure(config):
    """Keep the tests out of the reader's cache, and one torch thread per process under pytest-xdist.

    - ``$LEAKAGE_HAR_CACHE`` points to a fresh temporary folder for the session: models trained by tests
      (with one thread, below) must not land in the cache the chapters read, or a chapter would load a
      model trained differently from the one it was executed with.
    - Two processes with two torch threads each on two cores spin-wait on each other and run many times
      slower, so each xdist worker uses one thread.
    """
    _CACHE.append(tempfile.mkdtemp(prefix="leakage_har_test_cache_"))
    os.environ["LEAKAGE_HAR_CACHE"] = _CACHE[-1]
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_unconfigure(config):
    """Remove the session's cache folder."""
    for path in _CACHE:
        shutil.rmtree(path, ignore_errors=True)
