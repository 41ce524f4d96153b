"""Which engine runs a saved model: NumPy when it supports the model, else Keras."""

from __future__ import annotations

import os

from forecaster.errors import ForecasterError, UnsupportedModelError
from forecaster.model.engines import Engine, NumpyEngine
from forecaster.model.keras_engine import KerasEngine

ENGINES = ("auto", "numpy", "keras")


def make_engine(
    model_path: str | os.PathLike,
    representation: str,
    window: int,
    horizon: int,
    engine: str = "auto",
    jit_compile: bool = False,
) -> Engine:
    """The engine for a saved model.keras: NumPy when it supports the model, else Keras.

    `representation`, `window` and `horizon` are those the model was trained
    with (a bundle's). `engine` is "auto" (NumPy, falling back to Keras for
    layers the NumPy reference does not run), "numpy" or "keras".
    `jit_compile` applies to Keras: off by default, since a single forecast
    does not repay XLA's compile time.
    """
    if engine not in ENGINES:
        raise ForecasterError(
            f"Unknown engine {engine!r}: choose one of {', '.join(ENGINES)}."
        )
    args = (representation, window, horizon)
    if engine in ("auto", "numpy"):
        try:
            return NumpyEngine(model_path, *args)
        except UnsupportedModelError:
            if engine == "numpy":
                raise
    return KerasEngine.from_file(model_path, *args, jit_compile=jit_compile)
