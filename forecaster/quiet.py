"""Silencing exactly TensorFlow's retracing warning for the functions forecaster builds.

Each Keras engine (forecaster.model.keras_engine) and each Keras model that
is trained traces its own tf.function once. A process that builds many of
them (a benchmark, a search, a per-series run, the API in a notebook loop)
then hears from TensorFlow, for every few engines, that "5 out of the last
N calls ... triggered tf.function retracing": each trace is new code to
TensorFlow's counter, though every one of them is traced exactly once by
design. `quiet_retracing` drops that warning for those functions only;
every other warning, a retracing warning about anyone else's function
included, is left alone. No TensorFlow import: it filters a logger by name.
"""

from __future__ import annotations

import logging
import re

# The functions built once per engine or model: forecaster's Keras engine and
# the train/predict steps Keras makes for each model it fits.
OWN_FUNCTIONS = re.compile(r"<function (KerasEngine|TensorFlowTrainer)\.")


class RetracingFilter(logging.Filter):
    """Drops TensorFlow's retracing warning about forecaster's and Keras' functions."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (
            "triggered tf.function retracing" in text and OWN_FUNCTIONS.search(text)
        )


FILTER = RetracingFilter()


def quiet_retracing() -> None:
    """Install the filter on TensorFlow's logger ("tensorflow"), once."""
    logging.getLogger("tensorflow").addFilter(FILTER)  # a no-op the second time
