"""Tutorial-style 30-day forecast: load model.keras, model.predict once per day, plot.

What a user of the popular stacked-LSTM tutorial runs after training: import
TensorFlow, refit the tutorial's MinMaxScaler on all the prices (its leak, kept
on purpose), load the saved model, predict one day at a time feeding each
prediction back, inverse-transform and save a PNG. The speed benchmark times
this script end to end against `predict.py`.

python bench/tutorial_predict.py --model bench/out/tutorial-model.keras
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="bench/out/tutorial-model.keras")
    p.add_argument("--csv", default="data/AAPL.csv")
    p.add_argument("--column", default="Adj Close")
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--out", default="bench/out/tutorial-forecast.png")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))  # the tutorial's functions live in bench/tutorial.py
    from bench.tutorial import TIME_STEP, scale_and_split, tutorial_forecast_loop

    df = pd.read_csv(args.csv)
    df1 = df[args.column].to_numpy()
    scaler, _, test_data = scale_and_split(df1)
    model = tf.keras.models.load_model(args.model)
    lst_output = tutorial_forecast_loop(model, test_data, args.days, TIME_STEP)

    history = scaler.inverse_transform(test_data[-TIME_STEP:])
    forecast = scaler.inverse_transform(lst_output.reshape(-1, 1))
    day_new = np.arange(1, TIME_STEP + 1)
    day_pred = np.arange(TIME_STEP + 1, TIME_STEP + 1 + args.days)
    plt.figure(figsize=(10, 5))
    plt.plot(day_new, history, label="last 100 days")
    plt.plot(day_pred, forecast, label=f"next {args.days} days")
    plt.legend()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    plt.savefig(args.out, dpi=110)
    print(f"last forecast {forecast[-1, 0]:.2f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
