import numpy as np
import pytest

from leakage_core.data import sliding_windows


def test_window_label_is_last_sample_label():
    sig = np.arange(120, dtype=float)[:, None]
    lab = np.repeat([0, 3, 0], [60, 30, 30])
    w, y = sliding_windows(sig, lab, 50, 25)
    assert w.shape == (3, 50, 1) and w.dtype == np.float32 and y.dtype == np.int64
    assert w[:, 0, 0].tolist() == [0, 25, 50]
    assert y.tolist() == [lab[49], lab[74], lab[99]] == [0, 3, 0]


@pytest.mark.parametrize("t", [50, 51, 74, 75, 1000, 1234])
def test_window_count(t):
    w, y = sliding_windows(np.zeros((t, 3)), np.zeros(t, int))
    assert len(w) == len(y) == 1 + (t - 50) // 25


def test_short_recording_gives_no_windows():
    w, y = sliding_windows(np.zeros((49, 12)), np.zeros(49, int))
    assert w.shape == (0, 50, 12) and y.shape == (0,)


def test_windows_are_copies_of_the_signal():
    rng = np.random.default_rng(0)
    sig = rng.normal(size=(300, 2))
    w, _ = sliding_windows(sig, np.zeros(300, int), 50, 25)
    for i in range(len(w)):
        np.testing.assert_allclose(w[i], sig[i * 25 : i * 25 + 50], rtol=1e-6)


def test_bad_shapes():
    with pytest.raises(ValueError, match="signals"):
        sliding_windows(np.zeros(100), np.zeros(100, int))
    with pytest.raises(ValueError, match="sample_labels"):
        sliding_windows(np.zeros((100, 3)), np.zeros(99, int))
    with pytest.raises(ValueError, match="positive integers"):
        sliding_windows(np.zeros((100, 3)), np.zeros(100, int), step=0)
