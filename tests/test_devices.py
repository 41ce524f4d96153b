"""forecaster/train/devices.py: one model trained under MirroredStrategy on two devices.

The CPU has to be split into logical devices before TensorFlow starts, and
this test process has long started it, so the comparison runs in a fresh
Python process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_prices, tiny_settings, write_csv

from forecaster.config import Settings
from forecaster.errors import ForecasterError

pytestmark = pytest.mark.slow  # run by `pytest -m slow` (and CI), not by default

ROOT = Path(__file__).resolve().parent.parent

# Two replicas of 16 windows against one device taking the same 32: the same
# gradient in exact arithmetic, summed in another order in float32 (measured:
# 5e-7 on the weights, 5e-12 on the RMSE).
TOLERANCE = 1e-5  # relative, on the test RMSE, the losses and every weight
# 251 days make 160 fit windows, five whole global batches. A short last batch
# is split unevenly and Keras averages each replica's mean loss, which is not
# the mean over the batch: about 1e-3 apart after two epochs (docs/distributed.md).
DAYS = 251

COMPARE = """
import json, sys
import numpy as np
import tensorflow as tf
[cpu] = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
from forecaster.api import Forecaster
from forecaster.config import Settings
from forecaster.data import read_price_csv

settings = Settings.from_dict(json.loads(sys.argv[1]))
prices = read_price_csv(settings.data.csv)
runs = {}
for devices, batch in ((2, 16), (1, 32)):
    settings.train.devices, settings.train.batch_size = devices, batch
    model = Forecaster.from_settings(settings).fit(prices)
    runs[devices] = model
one, two = runs[1], runs[2]
weights = [
    float(np.max(np.abs(a - b) / (np.abs(b) + 1e-3)))
    for a, b in zip(two.model_.get_weights(), one.model_.get_weights())
]
print(json.dumps({
    "replicas": two.model_.distribute_strategy.num_replicas_in_sync,
    "rmse": [two.metrics_["model"]["rmse"], one.metrics_["model"]["rmse"]],
    "loss": [two.history_["loss"].tolist(), one.history_["loss"].tolist()],
    "weights": max(weights),
}))
"""


def test_two_logical_devices_match_one_device_with_the_global_batch(tmp_path):
    csv = write_csv(tmp_path / "WALK.csv", make_prices(DAYS))
    settings = tiny_settings(csv)
    done = subprocess.run(
        [sys.executable, "-c", COMPARE, json.dumps(settings.to_dict())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**_env(), "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    two, one = result["rmse"]
    assert two == pytest.approx(one, rel=TOLERANCE)
    assert result["loss"][0] == pytest.approx(result["loss"][1], rel=TOLERANCE)
    assert result["weights"] < TOLERANCE


def test_devices_is_checked():
    settings = Settings()
    settings.train.devices = 0
    with pytest.raises(ForecasterError, match=r"devices must be at least 1\. "):
        settings.validate()


def test_too_many_cpu_devices_once_tensorflow_runs_is_one_clear_error():
    import tensorflow as tf

    from forecaster.train.devices import mirrored_strategy

    tf.constant(1.0) + 1  # TensorFlow has started in this process
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("checks the CPU-only path; this machine has a GPU")
    with pytest.raises(ForecasterError, match="needs the CPU split into 64 logical"):
        mirrored_strategy(64)


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
