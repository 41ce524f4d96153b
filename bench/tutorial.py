"""A faithful replica of the popular stacked-LSTM stock tutorial, leaks and all.

What the tutorial does, and this file repeats on purpose:
- one MinMaxScaler fitted on ALL the prices before splitting (a look-ahead leak);
- a 65/35 split by time, windows built by a Python loop over
  `range(len(dataset) - time_step - 1)` (so the last day of each part is never
  a target);
- LSTM(50, return_sequences=True) x 2 + LSTM(50) + Dense(1), adam, mse;
- `fit(..., validation_data=(X_test, ytest), epochs=100, batch_size=64)`: the
  test set is the validation set (nothing stops early; it is only reported);
- a 30-day forecast that calls `model.predict` once per day.

What it did wrong and we do properly (`run_tutorial`): its printed RMSE compared
scaled targets with price predictions; here predictions and targets are both in
price units, beside the naive "tomorrow = today" RMSE on the same test days.
The functions are kept separate so the speed benchmark can reuse them.

python -m bench.tutorial --csv data/AAPL.csv   # one ticker, prints the scores
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

log = logging.getLogger("bench")

TUTORIAL_ROWS = 1259  # the tutorial's series: five years of daily closes
TIME_STEP = 100  # window length
TRAIN_SHARE = 0.65  # the tutorial's split
EPOCHS = 100
BATCH_SIZE = 64
FORECAST_DAYS = 30


def load_tutorial_series(csv: str, rows: int = TUTORIAL_ROWS):
    """The last `rows` Adj Close prices of `csv`, a pandas Series on its dates."""
    from forecaster.data import read_price_csv

    return read_price_csv(csv, column="Adj Close").values.iloc[-rows:]


def scale_and_split(prices: np.ndarray, train_share: float = TRAIN_SHARE):
    """The tutorial's preprocessing: scaler fitted on ALL prices (the leak), then split.

    prices: (n,). Returns (scaler, train_data (n_train, 1), test_data (n_test, 1)).
    """
    from sklearn.preprocessing import MinMaxScaler

    scaler = MinMaxScaler(feature_range=(0, 1))
    scaled = scaler.fit_transform(np.asarray(prices, dtype=np.float64).reshape(-1, 1))
    training_size = int(len(scaled) * train_share)
    return scaler, scaled[:training_size, :], scaled[training_size:, :1]


def create_dataset(dataset: np.ndarray, time_step: int = 1):
    """The tutorial's window loop, verbatim in effect.

    dataset: (n, 1). Returns X: (n - time_step - 1, time_step), y: (same,),
    X[i] = dataset[i:i + time_step, 0], y[i] = dataset[i + time_step, 0].
    """
    data_x, data_y = [], []
    for i in range(len(dataset) - time_step - 1):
        data_x.append(dataset[i : (i + time_step), 0])
        data_y.append(dataset[i + time_step, 0])
    return np.array(data_x), np.array(data_y)


def build_tutorial_model(time_step: int = TIME_STEP):
    """LSTM(50, seq) -> LSTM(50, seq) -> LSTM(50) -> Dense(1), adam, mse."""
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(time_step, 1)),
            keras.layers.LSTM(50, return_sequences=True),
            keras.layers.LSTM(50, return_sequences=True),
            keras.layers.LSTM(50),
            keras.layers.Dense(1),
        ]
    )
    model.compile(loss="mean_squared_error", optimizer="adam")
    return model


def tutorial_forecast_loop(
    model, recent: np.ndarray, days: int = FORECAST_DAYS, n_steps: int = TIME_STEP
) -> np.ndarray:
    """The tutorial's recursive forecast: one `model.predict` call per day.

    recent: the last scaled values, at least (n_steps,). The tutorial takes
    `test_data[341:]` (the last 100 of its 441 test rows); this takes the last
    `n_steps`, the same rows for 1,259 prices. Returns (days,) scaled values.
    """
    temp_input = np.asarray(recent, dtype=np.float64).reshape(-1)[-n_steps:].tolist()
    lst_output = []
    for _ in range(days):
        x_input = np.array(temp_input[-n_steps:]).reshape((1, n_steps, 1))
        yhat = model.predict(x_input, verbose=0)
        temp_input.extend(yhat[0].tolist())
        lst_output.extend(yhat.tolist())
    return np.array(lst_output).reshape(-1)


def run_tutorial(
    prices, epochs: int = EPOCHS, seed: int = 42, verbose: int = 0
) -> dict:
    """Train the replica on `prices` (a Series) and score it honestly in price units.

    The test days are the tutorial's own (its `ytest`); the naive forecast
    for each is the price the day before. Returns a flat dict of metrics.
    """
    import keras
    import tensorflow as tf

    from forecaster.evaluate.evaluation import naive_scores, scores

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    values = np.asarray(prices, dtype=np.float64)
    scaler, train_data, test_data = scale_and_split(values)
    x_train, y_train = create_dataset(train_data, TIME_STEP)
    x_test, ytest = create_dataset(test_data, TIME_STEP)
    x_train = x_train.reshape(x_train.shape[0], x_train.shape[1], 1)
    x_test = x_test.reshape(x_test.shape[0], x_test.shape[1], 1)

    model = build_tutorial_model(TIME_STEP)
    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        validation_data=(x_test, ytest),
        epochs=epochs,
        batch_size=BATCH_SIZE,
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    test_predict = scaler.inverse_transform(model.predict(x_test, verbose=0))[:, 0]

    first = len(train_data) + TIME_STEP  # index in `values` of the first test target
    actual = values[first : first + len(ytest)]
    previous = values[first - 1 : first - 1 + len(ytest)]
    if not np.allclose(scaler.inverse_transform(ytest[:, None])[:, 0], actual):
        raise RuntimeError("tutorial test targets do not line up with the prices")
    model_scores = scores(actual, test_predict, previous)
    baseline = naive_scores(actual, previous)
    val_loss = history.history["val_loss"]
    dates = prices.index[first : first + len(ytest)]
    return {
        "test_days": len(actual),
        "test_start": dates[0].strftime("%Y-%m-%d"),
        "test_end": dates[-1].strftime("%Y-%m-%d"),
        "model_rmse": model_scores["rmse"],
        "naive_rmse": baseline["rmse"],
        "rmse_ratio": model_scores["rmse"] / baseline["rmse"],
        "mae_ratio": model_scores["mae"] / baseline["mae"],
        "directional_accuracy": model_scores["directional_accuracy"],
        "naive_directional_accuracy": baseline["directional_accuracy"],
        "epochs_run": len(val_loss),
        "best_epoch": int(np.argmin(val_loss)) + 1,  # by test loss: reported only
        "train_seconds": seconds,
        # What the tutorial printed: scaled targets against price predictions.
        "tutorial_printed_rmse": math.sqrt(np.mean((ytest - test_predict) ** 2)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default="data/AAPL.csv")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    log.info("tutorial replica on the last %d rows of %s", TUTORIAL_ROWS, args.csv)
    result = run_tutorial(
        load_tutorial_series(args.csv), epochs=args.epochs, seed=args.seed, verbose=2
    )
    for key, value in result.items():
        print(f"{key:<28}{value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
