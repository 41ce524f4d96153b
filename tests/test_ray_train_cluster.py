"""Ray Train on a real cluster: two Ray nodes of one CPU each, all on 127.0.0.1.

One cluster for the module (ray.cluster_utils.Cluster, started on loopback
with forecaster.distributed.runtime.loopback_node_address) and two trainings
of the three-series sample panel (window 20, LSTM(8), 2 epochs, seed 1, a
global batch of 64 windows):
- two workers, one of which kills itself once in the middle of the second
  epoch (its `hook` calls os._exit, guarded by a marker file), so Ray Train
  restarts both from the checkpoint of the first;
- one worker, the reference for the loss curve, trained by Ray Train on the
  same prepared panel through `fit_on_ray` (what `Forecaster.fit` calls)
  without the test-day evaluation that follows it: only its loss curve and
  its run's record are compared, and the two-worker run's bundle is checked.
About 3-4 minutes on two cores, most of it Ray Train starting its worker
processes and TensorFlow in them (three times).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import forecaster as fc
from forecaster.cli import main as cli
from forecaster.data.panel import load_panel
from forecaster.prep.panel import prepare_panel

pytestmark = pytest.mark.slow  # run by `pytest -m slow` (and CI), not by default
ray = pytest.importorskip("ray", reason="Ray is not installed: pip install .[ray]")
from ray.cluster_utils import Cluster  # noqa: E402

from forecaster.distributed import train as ray_train  # noqa: E402
from forecaster.distributed.runtime import loopback_node_address  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TICKERS = ("AAPL", "GOOG", "MSFT")
TINY = dict(window=20, units=8, layers=1, epochs=2, seed=1, verbose=0)
GLOBAL_BATCH = 64
NODE_START_S = 180  # how long a node may take to register (Ray's own: 30 s)
# Largest gap allowed between the 1- and 2-worker loss curves, train and
# validation, each epoch, in the loss's units (the Student-t NLL of the
# scaled moves, about -3 here). Measured on this cluster with these settings
# (a run repeats bit for bit on its seed): at most 0.0049 (seed 1) and 0.0026
# (seed 2); changing the seed alone moves a curve by up to 0.038. So twice
# the largest gap measured.
TOLERANCE = 0.01


@dataclass
class Run:
    """A finished training: its Ray Train record and loss curve, model, bundle."""

    record: dict  # the bundle's metadata: training, runtime, ray_train
    history: pd.DataFrame  # epoch, loss, val_loss
    model: fc.Forecaster | None = None
    bundle: Path | None = None
    marker: Path | None = None


def patient(get_node, seconds: float):
    """Ray's `services.get_node`, retried for `seconds` while the GCS is too busy."""

    def get(*args, **kwargs):
        deadline = time.monotonic() + seconds
        while True:
            try:
                return get_node(*args, **kwargs)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    return get


@pytest.fixture(scope="module")
def cluster():
    """Two nodes of 1 CPU on 127.0.0.1, the driver joined; everything stopped after."""
    if ray.is_initialized():  # the session's embedded runtime (tests/conftest.py)
        ray.shutdown()
    saved = os.environ.get("PYTHONPATH")
    # the nodes' workers import this checkout's forecaster
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved]))
    started = None
    patience = pytest.MonkeyPatch()
    # Ray gives a starting node 30 s to register with the GCS; on this
    # loaded 2-core machine the GCS has taken longer, so let it retry longer
    services = ray._private.services
    patience.setattr(services, "get_node", patient(services.get_node, NODE_START_S))
    try:
        with loopback_node_address():
            # no dashboard: one heavy process less (Ray gives a node 30 s to start)
            started = Cluster(
                initialize_head=True,
                head_node_args={"num_cpus": 1, "include_dashboard": False},
            )
            started.add_node(num_cpus=1)
            ray.init(
                address=started.address,
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
        yield started
    finally:
        patience.undo()
        ray.shutdown()
        if started is not None:
            started.shutdown()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def panel():
    return load_panel(csv=[str(ROOT / "data" / f"{t}.csv") for t in TICKERS])


def kill_once(marker: Path, storage: Path, rank: int, epoch: int, step: int):
    """A worker hook: rank `rank` exits at (`epoch`, `step`) unless `marker` exists.

    It first waits until Ray Train has registered a checkpoint in `storage`
    (its controller collects reports every 2 s: a worker that dies before
    that loses the last one, and Ray Train restarts from the one before).
    A closure, so Ray ships it by value (the workers cannot import tests/).
    """
    registered = storage / ray_train.RUN_NAME / "checkpoint_manager_snapshot.json"

    def hook(at_rank: int, at_epoch: int, at_step: int) -> None:
        if (at_rank, at_epoch, at_step) != (rank, epoch, step) or marker.exists():
            return
        deadline = time.monotonic() + 300
        while not registered.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        marker.touch()
        os._exit(1)  # the process dies as in a crash: no cleanup, no exception

    return hook


@pytest.fixture(scope="module")
def two_workers(cluster, panel, tmp_path_factory):
    """Two workers, rank 1 killed once at step 5 of the second epoch; saved."""
    folder = tmp_path_factory.mktemp("two-workers")
    marker, storage = folder / "killed", folder / "checkpoints"
    hook = kill_once(marker, storage, rank=1, epoch=1, step=5)
    with pytest.MonkeyPatch.context() as patch:  # Forecaster.fit -> fit_on_ray
        patch.setattr(
            ray_train, "fit_on_ray", functools.partial(ray_train.fit_on_ray, hook=hook)
        )
        model = fc.Forecaster(ray_workers=2, batch_size=GLOBAL_BATCH // 2, **TINY)
        model.fit(panel, checkpoint_dir=storage)
    bundle = model.save(folder / "bundle")
    record = model.metadata_["training"]["runtime"]["ray_train"]
    return Run(record, model.history_, model, Path(bundle), marker)


@pytest.fixture(scope="module")
def one_worker(cluster, panel):
    """One worker taking the whole global batch: the reference loss curve.

    The panel prepared and trained as `Forecaster.fit` does, without the
    test-day evaluation after it (nothing here reads it).
    """
    settings = fc.Forecaster(ray_workers=1, batch_size=GLOBAL_BATCH, **TINY).settings
    prepared = prepare_panel(panel, settings.prep, settings.prep.features)
    result = ray_train.fit_on_ray(list(prepared.parts.values()), settings)
    return Run(result.runtime["ray_train"], pd.DataFrame(result.history))


def test_the_two_workers_ran_on_the_two_nodes(two_workers):
    record = two_workers.record
    alive = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    assert len(alive) == 2
    assert record["workers"] == 2
    assert set(record["nodes"]) == alive
    assert [p["rank"] for p in record["placement"]] == [0, 1]
    assert {p["node_id"] for p in record["placement"]} == alive
    assert {p["node_ip"] for p in record["placement"]} == {"127.0.0.1"}
    assert record["global_batch"] == GLOBAL_BATCH
    assert record["batch_per_worker"] == GLOBAL_BATCH // 2
    assert abs(record["windows_per_worker"][0] - record["windows_per_worker"][1]) <= 1


def test_a_killed_worker_restarts_from_the_last_checkpoint(two_workers):
    """Rank 1 died in epoch 2; both restarted from epoch 1's checkpoint and finished."""
    assert two_workers.marker.exists()
    assert two_workers.record["attempts"] == 2
    assert two_workers.record["started_at_epoch"] == 1
    assert len(two_workers.record["epoch_seconds"]) == 2
    history = two_workers.history
    assert list(history["epoch"]) == [1, 2]
    assert np.isfinite(history[["loss", "val_loss"]].to_numpy()).all()


def test_the_bundle_is_whole_and_forecasts_without_tensorflow(two_workers, tmp_path):
    loaded = fc.load(two_workers.bundle)
    saved = loaded.metadata_["training"]["runtime"]["ray_train"]
    assert saved == two_workers.record
    forecast = loaded.forecast(3, engine="numpy")
    assert sorted(forecast["series"].unique()) == list(TICKERS)
    assert len(forecast) == 3 * len(TICKERS)
    assert (forecast["forecast"] > 0).all()
    out = tmp_path / "predicted"
    argv = ["predict", "--model", str(two_workers.bundle), "--days", "3"]
    assert cli.run(cli.main, [*argv, "--out", str(out)]) == 0
    assert (out / "forecast.csv").exists()


def test_one_and_two_workers_learn_alike_at_the_same_global_batch(
    two_workers, one_worker
):
    assert one_worker.record["global_batch"] == two_workers.record["global_batch"]
    assert one_worker.record["steps_per_epoch"] == two_workers.record["steps_per_epoch"]
    one = one_worker.history[["loss", "val_loss"]].to_numpy()
    two = two_workers.history[["loss", "val_loss"]].to_numpy()
    assert np.abs(one - two).max() <= TOLERANCE, (one, two)
