"""The vanishing and the exploding gradient, measured for every cell on data/AAPL.csv.

python -m bench.gradients --plot docs/gradients.png   # about 5 min on 2 CPU cores
python -m bench.gradients --explode                   # about 4 min

--plot trains one model of each cell (window 100, one layer of 32 units) with
the project's own pipeline, then measures ||d loss_i / d x_t||, averaged over
the test windows, against the distance from the window's end, at
initialisation and trained, by BPTT in float64 (forecaster/train/bptt.py). It prints
the ratios to distance 1, where each curve falls below 1e-6 of it, and draws
the PNG.

--explode trains a SimpleRNN whose recurrent kernel is 2 x an orthogonal
matrix with plain SGD and with Adam, each with and without clipnorm=1, beside
a control at Keras' initialisation, with the NumPy trainer
(forecaster/train/nptrain.py, which tracks Keras step by step).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from forecaster.config import DataSettings, ModelSettings, PrepSettings, Settings
from forecaster.data import load_prices
from forecaster.prep.windows import prepare
from forecaster.train.bptt_cells import direction_forward
from forecaster.train.bptt_check import keras_float64, tape_gradients
from forecaster.train.bptt_network import Network, gradient_norms_by_distance
from forecaster.train.fit import fit_model
from forecaster.train.nptrain import keras_network, make_optimizer, window_arrays

CSV = "data/AAPL.csv"
WINDOW = 100
UNITS = 32
CELLS = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}
FLOOR = 1e-6  # "vanished": below this fraction of the gradient at distance 1
SHOWN = (1, 2, 5, 10, 25, 50, 100)


def _settings(cell: str) -> Settings:
    settings = Settings(data=DataSettings(csv=CSV), prep=PrepSettings(window=WINDOW))
    settings.model = ModelSettings(cell=cell, units=UNITS, layers=1)
    settings.train.epochs, settings.train.patience = 20, 5
    settings.train.verbose = 0
    return settings.validate()


def _network(model) -> Network:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.keras"
        model.save(path)
        return Network.load(path)


def crossing(ratios: np.ndarray) -> int | None:
    """The first distance (1-based) whose ratio is below FLOOR, None if none."""
    below = np.flatnonzero(ratios < FLOOR)
    return int(below[0]) + 1 if below.size else None


def measure() -> dict:
    """{(cell, "initialisation" | "trained"): ratios (WINDOW,)}, distance 1 first."""
    prepared = prepare(load_prices(DataSettings(csv=CSV)).values, _settings("rnn").prep)
    x, y = window_arrays(prepared, prepared.split.test_targets, 1)
    curves = {}
    for cell in CELLS:
        settings = _settings(cell)
        initial, _ = keras_network(settings.model, WINDOW, 1, settings.train.seed)
        result = fit_model(prepared, settings)
        print(
            f"{cell}: {len(result.history)} epochs, best val_loss "
            f"{min(row['val_loss'] for row in result.history):.3e}",
            flush=True,
        )
        for state, model in (("initialisation", initial), ("trained", result.model)):
            network = _network(model)
            norms = gradient_norms_by_distance(network, x, y)
            curves[cell, state] = norms / norms[0]
            print(
                f"  {state}: BPTT against GradientTape (float64), largest relative "
                f"error over the {WINDOW} distances: {_tape_error(network, x, y):.1e}; "
                f"{_gate_mean(network, x)}",
                flush=True,
            )
    return curves


def _gate_mean(network: Network, x: np.ndarray) -> str:
    """The mean of the factor each cell's carry path multiplies by per step:
    the LSTM's forget gate f, the GRU's update gate z, the SimpleRNN's tanh'."""
    spec, weights = network.specs[0], network.weights
    outputs, caches = direction_forward(spec.cell, *weights[:3], x)
    if spec.cell == "LSTM":
        return f"mean forget gate f {np.mean([cache[1] for cache in caches]):.3f}"
    if spec.cell == "GRU":
        return f"mean update gate z {np.mean([cache[1] for cache in caches]):.3f}"
    return f"mean tanh' = 1 - h^2 {np.mean(1.0 - outputs**2):.3f}"


def _tape_error(network: Network, x: np.ndarray, y: np.ndarray) -> float:
    """Largest relative gap between the norms by distance of BPTT and of
    GradientTape on the same weights in a float64 Keras model."""
    from forecaster.model.factory import build_model

    spec = network.specs[0]
    cell = {name: key for key, name in CELLS.items()}[spec.cell]
    with keras_float64():
        settings = ModelSettings(cell=cell, units=spec.units, layers=1)
        model = build_model(settings, WINDOW)
    model.set_weights(network.weights)
    _, d_inputs = tape_gradients(model, x, y)
    theirs = np.sqrt((d_inputs**2).sum(axis=2)).mean(axis=0)[::-1] * len(x)
    ours = gradient_norms_by_distance(network, x, y)
    return float(np.max(np.abs(ours - theirs) / theirs))


def report(curves: dict) -> None:
    print("ratio ||dloss/dx_(T-k+1)|| / ||dloss/dx_T||, mean over test windows")
    print(f"{'cell':10}{'state':16}" + "".join(f"{f'k={k}':>10}" for k in SHOWN))
    for (cell, state), ratios in curves.items():
        values = "".join(f"{ratios[k - 1]:>10.2e}" for k in SHOWN)
        print(f"{CELLS[cell]:10}{state:16}{values}")
    for (cell, state), ratios in curves.items():
        where = crossing(ratios)
        text = f"at distance {where}" if where else f"not within {WINDOW}"
        print(f"{CELLS[cell]} {state}: below {FLOOR:g} {text}")


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    distance = np.arange(1, WINDOW + 1)
    for ax, state in zip(axes, ("initialisation", "trained"), strict=True):
        for cell, name in CELLS.items():
            ax.plot(distance, curves[cell, state], label=name)
        ax.axhline(FLOOR, color="grey", linestyle="--", label=f"{FLOOR:g}")
        ax.set_yscale("log")
        ax.set_xlabel("distance from the window's end, k (1 = last day)")
        ax.set_title(state)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("||dloss/dx|| relative to k = 1")
    axes[0].legend()
    fig.suptitle(
        f"Gradient reaching each input day, {CSV}, window {WINDOW}, "
        f"one layer of {UNITS} units, mean over test windows"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


# (label, recurrent scale or None for Keras' initialisation, optimizer, lr, clipnorm)
EXPLODE_RUNS = (
    ("Keras init", None, "sgd", 0.1, None),
    ("2 x orthogonal", 2.0, "sgd", 0.1, None),
    ("2 x orthogonal", 2.0, "sgd", 0.1, 1.0),
    ("2 x orthogonal", 2.0, "adam", 0.01, None),
    ("2 x orthogonal", 2.0, "adam", 0.01, 1.0),
)


def explode(steps: int = 200, batch: int = 64) -> None:
    """A SimpleRNN with recurrent kernel 2 x orthogonal, trained with and
    without clipnorm=1, beside the same model at Keras' initialisation."""
    prepared = prepare(load_prices(DataSettings(csv=CSV)).values, _settings("rnn").prep)
    x, y = window_arrays(prepared, prepared.split.fit_targets, 1)
    x_val, y_val = window_arrays(prepared, prepared.split.val_targets, 1)
    print(f"predicting 0 (no change) scores val MSE {np.mean(y_val**2):.2e}")
    rnn = ModelSettings(cell="rnn", units=UNITS, layers=1)
    for label, scale, name, learning_rate, clipnorm in EXPLODE_RUNS:
        _, network = keras_network(rnn, WINDOW, 1)
        if scale is not None:
            normal = np.random.default_rng(1).normal(size=(UNITS, UNITS))
            network.weights[1][:] = scale * np.linalg.qr(normal)[0]
        optimizer = make_optimizer(name, learning_rate, clipnorm)
        rng = np.random.default_rng(2)
        losses, first_norm = [], None
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(steps):
                rows = rng.choice(len(x), batch, replace=False)
                gradients = network.gradients(x[rows], y[rows])
                if first_norm is None:
                    first_norm = np.sqrt(sum((g**2).sum() for g in gradients.weights))
                optimizer.apply(network.weights, gradients.weights)
                losses.append(gradients.loss)
            val = network.loss(x_val, y_val)
        shown = " ".join(f"{losses[k]:.1e}" for k in (0, 1, 5, 10, 50, steps - 1))
        print(
            f"{label:15} {name} lr={learning_rate} clipnorm={clipnorm}: step-0 "
            f"gradient norm {first_norm:.1e}; loss at steps 0 1 5 10 50 "
            f"{steps - 1}: {shown}; val MSE {val:.2e}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, help="measure and write this PNG")
    parser.add_argument("--explode", action="store_true", help="the clipping run")
    args = parser.parse_args()
    if args.plot:
        curves = measure()
        report(curves)
        plot(curves, args.plot)
    if args.explode:
        explode()
    if not (args.plot or args.explode):
        parser.print_help()


if __name__ == "__main__":
    main()
