"""The grid on a Dask cluster: the same rows as in one process (run_grid's tasks go through joblib)."""

import numpy as np
import pandas as pd
import pytest

from leakage_core.data import make_synthetic
from leakage_core.study import Setting, run_grid

distributed = pytest.importorskip("distributed", reason="the cluster extra: pip install 'leakage_core[cluster]'")


def test_run_grid_on_a_local_dask_cluster_equals_one_process():
    from joblib import parallel_config

    data = make_synthetic("wetlab", n_subjects=3, minutes=2, seed=0)
    settings = [Setting("tinyhar", sampler=s, batch_size=50) for s in ("shuffle", "sequential")]
    local = run_grid(data, settings, progress=False)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
        parallel_config(backend="dask"),
        distributed.get_task_stream(client) as stream,
    ):
        remote = run_grid(data, settings, n_jobs=2, progress=False)
    assert len(stream.data) > 0  # the tasks ran on the cluster's workers, not in this process
    assert len(local) > 0 and local.shape == remote.shape
    for col in local.columns:
        if col in ("true", "pred"):
            assert all(np.array_equal(a, b) for a, b in zip(local[col], remote[col])), col
        else:
            pd.testing.assert_series_equal(local[col], remote[col], check_names=True)
