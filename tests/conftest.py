"""Test-session settings shared by every test file."""

import os
import shutil
import tempfile

_CACHE: list[str] = []
#: the reader's switches (data source, data and results folders): tests that need one set it themselves
_READER_SETTINGS = ("LEAKAGE_HAR_SOURCE", "LEAKAGE_HAR_DATA", "LEAKAGE_HAR_RESULTS")


def pytest_configure(config):
    """Keep the tests out of the reader's cache, and one torch thread per process under pytest-xdist.

    - ``$LEAKAGE_HAR_CACHE`` points to a fresh temporary folder for the session: models trained by tests
      (with one thread, below) must not land in the cache the chapters read, or a chapter would load a
      model trained differently from the one it was executed with.
    - ``$LEAKAGE_HAR_SOURCE``, ``$LEAKAGE_HAR_DATA`` and ``$LEAKAGE_HAR_RESULTS`` are removed, so a reader's
      shell (say, ``LEAKAGE_HAR_SOURCE=real``) does not change what the tests check.
    - Two processes with two torch threads each on two cores spin-wait on each other and run many times
      slower, so each xdist worker uses one thread.
    """
    _CACHE.append(tempfile.mkdtemp(prefix="leakage_har_test_cache_"))
    os.environ["LEAKAGE_HAR_CACHE"] = _CACHE[-1]
    for name in _READER_SETTINGS:  # a reader's shell settings must not change what the tests check
        os.environ.pop(name, None)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_unconfigure(config):
    """Remove the session's cache folder."""
    for path in _CACHE:
        shutil.rmtree(path, ignore_errors=True)
