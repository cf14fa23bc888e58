import numpy as np
import pytest

from leakage_core.federated import SAMPLERS, make_batches

LABELS = np.repeat([0, 1, 0, 2, 0, 3], [120, 40, 60, 25, 80, 3])  # 328 windows, class 3 tiny


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sizes_and_dropped_last_batch(sampler):
    batches = make_batches(LABELS, 100, sampler, seed=0)
    assert len(batches) == 3
    assert all(b.shape == (100,) and b.dtype == np.int64 for b in batches)
    assert all(b.min() >= 0 and b.max() < LABELS.size for b in batches)


@pytest.mark.parametrize("batch_size", [50, 100])
@pytest.mark.parametrize("seed", [0, 3, 99])
def test_sequential_batches_are_consecutive_windows_whatever_the_seed(batch_size, seed):
    batches = make_batches(LABELS, batch_size, "sequential", seed=seed)
    assert len(batches) == LABELS.size // batch_size
    for i, idx in enumerate(batches):  # batch i holds windows i*N .. (i+1)*N - 1, in time order
        np.testing.assert_array_equal(idx, np.arange(i * batch_size, (i + 1) * batch_size))


def test_shuffle_is_disjoint_and_random():
    batches = make_batches(LABELS, 100, "shuffle", seed=0)
    flat = np.concatenate(batches)
    assert np.unique(flat).size == 300
    assert not np.array_equal(flat, np.arange(300))


@pytest.mark.parametrize("sampler", [s for s in SAMPLERS if s != "sequential"])
def test_seeded_samplers_are_deterministic_and_depend_on_the_seed(sampler):
    a = make_batches(LABELS, 50, sampler, seed=3)
    b = make_batches(LABELS, 50, sampler, seed=3)
    other = make_batches(LABELS, 50, sampler, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, other))  # the seed is used


def test_balanced_counts_and_replacement_only_when_needed():
    for idx in make_batches(LABELS, 100, "balanced", seed=1):
        counts = np.bincount(LABELS[idx], minlength=4)
        assert counts.max() - counts.min() <= 1 and counts.sum() == 100
        small = idx[LABELS[idx] == 3]
        assert np.unique(small).size == 3  # class 3 has only 3 windows: drawn with replacement
        for c in (0, 1, 2):
            sel = idx[LABELS[idx] == c]
            assert np.unique(sel).size == sel.size  # enough windows: no repeats


def test_too_few_windows_gives_no_batch():
    assert make_batches(np.zeros(99, int), 100, "shuffle") == []


def test_bad_input():
    with pytest.raises(ValueError, match="unknown sampler"):
        make_batches(LABELS, 10, "random")
    with pytest.raises(ValueError, match="batch_size"):
        make_batches(LABELS, 0)
    with pytest.raises(ValueError, match="integer array"):
        make_batches(LABELS.astype(float), 10)
