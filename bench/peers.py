"""Training speed beside the peers: forecaster, neuralforecast and darts, whole fit().

The same network on every side (LSTM 50 units x 3 layers, window 100, one
step ahead, batch 256, float32, Adam 1e-3), the same training windows (the
fit windows of data/AAPL.csv under the default PrepSettings: the scaled
series forecaster trains on is handed to the peers as it is, so every side
sees the same numbers and the same window count) and 10 epochs each, no
early stopping. Each side runs in a fresh process; a round runs the three
in a rotating order, so none always goes first.

Per side and round it records the wall time of the whole training call
(building the model and the data pipeline included, imports not) and the
time at the end of every training step, from which:

- whole fit: windows trained (windows x epochs) / fit seconds;
- steady state: the windows of epochs 2..N / the time from the end of
  epoch 1's last step to the end of epoch N's last step (forecaster's
  validation pass and checkpoint of each epoch fall inside it).

forecaster runs as `train.py` trains (`Forecaster.fit`'s `fit_model`, with
the default Student-t head, validation and a checkpoint every epoch); the
peers with their own defaults otherwise (no validation set, checkpoints and
loggers off, as a script that only trains would run them). neuralforecast
trains by steps, sampling `windows_batch_size` windows per step: it gets
the same number of steps as forecaster and darts take (10 epochs of
ceil(windows / 256) batches).

The peers are not dependencies of forecaster: they run from their own
virtual environment (`--peers-python`, default /work/peers-venv/bin/python
or $PEERS_PYTHON), forecaster from this one.

    flock /tmp/bench.lock python -m bench.peers --rounds 3           # < 6 min
    flock /tmp/bench.lock python -m bench.peers --rounds 3 --append  # 3 more
    python -m bench.peers --report                                   # reprint
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
RESULTS = OUT / "peers.json"
SERIES = OUT / "peers_series.npy"
SIDES = ("forecaster", "neuralforecast", "darts")
UNITS, LAYERS, WINDOW, BATCH, SEED = 50, 3, 100, 256, 42
PEERS_PYTHON = os.environ.get("PEERS_PYTHON", "/work/peers-venv/bin/python")


# ------------------------------------------------------------- the sides


def forecaster_side(epochs: int, checkpoint: bool = True) -> dict:
    """Train the default model as train.py does; returns timings."""
    from bench.speed_common import load_aapl
    from forecaster.config import Settings
    from forecaster.train.fit import fit_model

    _, _, prepared = load_aapl()
    settings = Settings()
    settings.train.epochs = epochs
    settings.train.patience = 0  # every epoch runs, as on the peers' side
    settings.train.verbose = 0
    steps = StepClock.keras()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        fit_model(
            [prepared],
            settings,
            checkpoint_dir=Path(tmp) / "ckpt" if checkpoint else None,
            callbacks=[steps],
        )
        seconds = time.perf_counter() - started
    return {"fit_s": seconds, "step_ends": steps.ends, "started": started}


def neuralforecast_side(series: np.ndarray, epochs: int) -> dict:
    """neuralforecast's LSTM on the same windows, the same number of steps."""
    import pandas as pd
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM

    windows = len(series) - WINDOW
    clock = StepClock.lightning()
    frame = pd.DataFrame(
        {
            "unique_id": "AAPL",
            "ds": np.arange(len(series)),
            "y": series.astype(np.float32),
        }
    )
    started = time.perf_counter()
    model = LSTM(
        h=1,
        input_size=WINDOW,
        encoder_n_layers=LAYERS,
        encoder_hidden_size=UNITS,
        decoder_hidden_size=UNITS,
        decoder_layers=1,
        learning_rate=1e-3,
        max_steps=epochs * -(-windows // BATCH),
        batch_size=1,
        windows_batch_size=BATCH,
        scaler_type="identity",
        random_seed=SEED,
        val_check_steps=10**6,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
        callbacks=[clock],
    )
    NeuralForecast(models=[model], freq=1).fit(frame)
    return {"fit_s": time.perf_counter() - started, "step_ends": clock.ends}


def darts_side(series: np.ndarray, epochs: int) -> dict:
    """darts' BlockRNNModel (LSTM) on the same windows, batch 256."""
    from darts import TimeSeries
    from darts.models import BlockRNNModel

    clock = StepClock.lightning()
    target = TimeSeries.from_values(series.astype(np.float32))
    started = time.perf_counter()
    model = BlockRNNModel(
        input_chunk_length=WINDOW,
        output_chunk_length=1,
        model="LSTM",
        hidden_dim=UNITS,
        n_rnn_layers=LAYERS,
        batch_size=BATCH,
        n_epochs=epochs,
        optimizer_kwargs={"lr": 1e-3},
        random_state=SEED,
        save_checkpoints=False,
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "enable_checkpointing": False,
            "callbacks": [clock],
        },
    )
    model.fit(target, verbose=False)
    return {"fit_s": time.perf_counter() - started, "step_ends": clock.ends}


STEP_ENDS: list[float] = []  # module-level: neuralforecast fits a deep copy of
#   its model and trainer settings, so a list held by the callback itself
#   would fill in the copy only


class StepClock:
    """The time at the end of every training step, as a Keras or Lightning callback.

    Every clock appends to `STEP_ENDS` (one side runs per process).
    """

    @staticmethod
    def keras():
        import keras

        class KerasClock(keras.callbacks.Callback):
            ends = STEP_ENDS

            def on_train_batch_end(self, batch, logs=None):
                STEP_ENDS.append(time.perf_counter())

        return KerasClock()

    @staticmethod
    def lightning():
        try:
            from lightning.pytorch.callbacks import Callback
        except ImportError:
            from pytorch_lightning.callbacks import Callback

        class LightningClock(Callback):
            ends = STEP_ENDS

            def on_train_batch_end(self, *args, **kwargs):
                STEP_ENDS.append(time.perf_counter())

        return LightningClock()


# ------------------------------------------------------------- the driver


def write_series() -> int:
    """Save the scaled series behind forecaster's fit windows; returns the windows."""
    from bench.speed_common import load_aapl

    _, _, prepared = load_aapl()
    start, stop = prepared.split.fit_targets
    OUT.mkdir(parents=True, exist_ok=True)
    np.save(SERIES, prepared.scaled[start - WINDOW : stop].astype(np.float32))
    return stop - start


def run_side(side: str, epochs: int, peers_python: str) -> dict:
    """One side in a fresh process; its result row."""
    python = sys.executable if side == "forecaster" else peers_python
    command = [python, "-m", "bench.peers", "--side", side, "--epochs", str(epochs)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def summarise(row: dict, windows: int, epochs: int) -> dict:
    """Whole-fit and steady-state windows/s of one side's run."""
    ends = row["step_ends"]
    steps = len(ends) // epochs
    epoch_ends = [ends[(k + 1) * steps - 1] for k in range(epochs)]
    steady = windows * (epochs - 1) / (epoch_ends[-1] - epoch_ends[0])
    return {
        "side": row["side"],
        "fit_s": round(row["fit_s"], 3),
        "fit_wps": round(windows * epochs / row["fit_s"], 1),
        "steady_wps": round(steady, 1),
        "before_first_epoch_end_s": round(row["fit_s"] - (ends[-1] - epoch_ends[0]), 3),
        "steps_per_epoch": steps,
    }


def report(rows: list[dict]) -> str:
    """Medians and ranges per side, and forecaster's ratios to each peer."""
    lines = [
        "| side | runs | whole fit win/s (median, range) | steady win/s (median, range)"
        " | fit s (median) | s up to epoch 1's end |",
        "|---|---|---|---|---|---|",
    ]
    med = {}
    for side in SIDES:
        mine = [r for r in rows if r["side"] == side]
        if not mine:
            continue
        fit = [r["fit_wps"] for r in mine]
        steady = [r["steady_wps"] for r in mine]
        med[side] = (statistics.median(fit), statistics.median(steady))
        lines.append(
            f"| {side} | {len(mine)} | {med[side][0]:,.0f} ({min(fit):,.0f}-"
            f"{max(fit):,.0f}) | {med[side][1]:,.0f} ({min(steady):,.0f}-"
            f"{max(steady):,.0f}) | {statistics.median(r['fit_s'] for r in mine):.2f}"
            f" | {statistics.median(r['before_first_epoch_end_s'] for r in mine):.2f} |"
        )
    for peer in SIDES[1:]:
        if "forecaster" in med and peer in med:
            ours, theirs = med["forecaster"], med[peer]
            lines.append(
                f"\nforecaster / {peer}: whole fit {ours[0] / theirs[0]:.2f}x, "
                f"steady state {ours[1] / theirs[1]:.2f}x (target: whole fit >= 1.2x)"
            )
    return "\n".join(lines)


def main(argv=None) -> None:
    """Run the sides in alternating rounds (or one side, internally)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--peers-python", default=PEERS_PYTHON)
    parser.add_argument("--no-checkpoint", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--append", action="store_true", help="add to peers.json")
    parser.add_argument("--report", action="store_true", help="reprint, no run")
    args = parser.parse_args(argv)
    if args.side:
        print(json.dumps(one_side(args.side, args.epochs, not args.no_checkpoint)))
        return
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"rows": []}
    if args.report:
        print(report(saved["rows"]))
        return
    rows = saved["rows"] if args.append else []
    windows = write_series()
    sides = args.sides.split(",")
    for k in range(args.rounds):
        order = sides[k % len(sides) :] + sides[: k % len(sides)]
        for side in order:
            row = summarise(
                run_side(side, args.epochs, args.peers_python), windows, args.epochs
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
        RESULTS.write_text(json.dumps({"windows": windows, "rows": rows}, indent=1))
    print(report(rows))


def one_side(side: str, epochs: int, checkpoint: bool) -> dict:
    """Run `side` here (in the process the driver started)."""
    if side == "forecaster":
        row = forecaster_side(epochs, checkpoint)
    else:
        series = np.load(SERIES)
        row = (neuralforecast_side if side == "neuralforecast" else darts_side)(
            series, epochs
        )
    row["side"] = side
    return row


if __name__ == "__main__":
    main()
