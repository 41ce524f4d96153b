"""The tf.data input pipeline: exact windows, and a full reshuffle every epoch."""

import numpy as np
import pytest

from forecaster.config import PrepSettings
from forecaster.prep.windows import (
    encode_inputs,
    encode_targets,
    target_view,
    window_view,
)
from forecaster.train import fit as training
from forecaster.train.fit import batches_per_pass, window_dataset

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


def stream_orders(dataset, passes):
    """The window order of each of the first `passes` passes of an endless stream."""
    n = batches_per_pass(TARGETS, 8)
    batches = list(dataset.take(n * passes).as_numpy_iterator())
    assert len(batches) == n * passes
    orders = []
    for p in range(passes):
        chunk = batches[p * n : (p + 1) * n]
        orders.append(_order(np.concatenate([x for x, _ in chunk])))
    return orders


def test_repeated_stream_is_a_new_full_permutation_every_pass():
    dataset = window_dataset(
        SERIES, TARGETS, PREP, batch_size=8, shuffle=True, seed=3, repeat=True
    )
    assert int(dataset.cardinality()) == -1  # infinite: fit needs steps_per_epoch
    orders = stream_orders(dataset, 4)
    for order in orders:  # each pass ends on a batch boundary, every window once
        assert sorted(order) == list(range(43))
    assert len({tuple(order) for order in orders}) == 4


def test_skip_passes_resumes_the_same_sequence_of_orders():
    def stream(**kw):
        return window_dataset(
            SERIES, TARGETS, PREP, batch_size=8, shuffle=True, seed=3, repeat=True, **kw
        )

    assert stream_orders(stream(skip_passes=2), 2) == stream_orders(stream(), 4)[2:]
    other_seed = window_dataset(
        SERIES, TARGETS, PREP, batch_size=8, shuffle=True, seed=4, repeat=True
    )
    assert stream_orders(other_seed, 2) != stream_orders(stream(), 2)


def test_unshuffled_stream_repeats_time_order():
    dataset = window_dataset(SERIES, TARGETS, PREP, batch_size=8, repeat=True)
    assert stream_orders(dataset, 2) == [list(range(43))] * 2


def test_batches_per_pass_counts_the_short_last_batch():
    assert batches_per_pass(TARGETS, 8) == 6
    assert batches_per_pass((0, 16), 8) == 2


@pytest.mark.parametrize("shuffle", [False, True])
def test_pipelines_prefetch_a_fixed_depth_without_autotune(shuffle):
    """AUTOTUNE's tuning thread stalls an epoch start when Keras drops an iterator."""
    dataset = window_dataset(SERIES, TARGETS, PREP, batch_size=8, shuffle=shuffle)
    assert dataset.options().autotune.enabled is False
    assert training.input_runtime()["tf_data_autotune"] is False
    assert training.input_runtime()["prefetch_batches"] == training.PREFETCH_BATCHES


@pytest.mark.parametrize(
    "shuffle,repeat", [(False, False), (True, False), (True, True)]
)
def test_pipelines_are_traced_without_autograph(monkeypatch, shuffle, repeat):
    # AutoGraph's rewrite of the mapped functions cost ~0.2 s of every fit's start.
    from tensorflow.python.autograph.impl import api

    converted = []
    real = api._convert_actual

    def counting(entity, program_ctx):
        converted.append(getattr(entity, "__qualname__", repr(entity)))
        return real(entity, program_ctx)

    monkeypatch.setattr(api, "_convert_actual", counting)
    dataset = window_dataset(
        SERIES, TARGETS, PREP, batch_size=8, shuffle=shuffle, repeat=repeat
    )
    next(iter(dataset))
    assert converted == []
