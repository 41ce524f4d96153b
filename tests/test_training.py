"""The tf.data input pipeline: exact windows, and a full reshuffle every epoch."""

import numpy as np
import pytest

from forecaster.config import PrepSettings
from forecaster.training import window_dataset
from forecaster.windows import encode_inputs, encode_targets, target_view, window_view

PREP = PrepSettings(window=5, horizon=2, representation="delta")
SERIES = np.random.default_rng(0).random(60).astype(np.float32)
TARGETS = (7, 50)  # 43 windows: batches of 8 leave a short last batch


def one_pass(dataset):
    """Every (inputs, targets) pair of one pass, in order, as NumPy arrays."""
    xs, ys = zip(*dataset.as_numpy_iterator(), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def expected():
    windows = window_view(SERIES, PREP.window, TARGETS)
    targets = target_view(SERIES, PREP.horizon, TARGETS)
    return (
        encode_inputs(windows, PREP.representation),
        encode_targets(windows, targets, PREP.representation),
    )


def test_unshuffled_pass_gives_every_window_in_time_order():
    x, y = one_pass(window_dataset(SERIES, TARGETS, PREP, batch_size=8))
    want_x, want_y = expected()
    np.testing.assert_allclose(x, want_x, atol=1e-7)
    np.testing.assert_allclose(y, want_y, atol=1e-7)


def _order(x):
    """Which window each row is, by its inputs (rows of `expected` are unique)."""
    want_x, _ = expected()
    flat = want_x[:, :, 0]
    return [int(np.argmin(np.abs(flat - row[:, 0]).sum(axis=1))) for row in x]


def test_shuffled_passes_are_full_permutations_in_new_orders():
    dataset = window_dataset(SERIES, TARGETS, PREP, batch_size=8, shuffle=True, seed=3)
    orders = []
    want_x, want_y = expected()
    for _ in range(3):  # three epochs
        x, y = one_pass(dataset)
        order = _order(x)
        assert sorted(order) == list(range(len(want_x)))  # each window exactly once
        np.testing.assert_allclose(x, want_x[order], atol=1e-7)
        np.testing.assert_allclose(y, want_y[order], atol=1e-7)  # pairs kept
        orders.append(order)
    assert orders[0] != orders[1] != orders[2]
    assert orders[0] != list(range(len(want_x)))


@pytest.mark.parametrize("seed, same", [(3, True), (4, False)])
def test_shuffle_order_follows_the_seed(seed, same):
    def first_orders(s):
        dataset = window_dataset(
            SERIES, TARGETS, PREP, batch_size=8, shuffle=True, seed=s
        )
        return [_order(one_pass(dataset)[0]) for _ in range(2)]

    assert (first_orders(3) == first_orders(seed)) is same


def test_shuffled_dataset_knows_its_length():
    """Keras ends each epoch by the dataset's cardinality (43 windows, batch 8)."""
    dataset = window_dataset(SERIES, TARGETS, PREP, batch_size=8, shuffle=True)
    assert int(dataset.cardinality()) == 6
