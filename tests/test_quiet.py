"""Many engines in one process: no "retracing" warning, every other warning kept."""

import json
import logging

import numpy as np
import pytest

from forecaster.model.keras_engine import KerasEngine

RETRACING = "triggered tf.function retracing"


def _engines(bundle, count: int):
    settings = json.loads((bundle / "metadata.json").read_text())["settings"]["prep"]
    args = (settings["representation"], settings["window"], settings["horizon"])
    for _ in range(count):
        yield KerasEngine.from_file(bundle / "model.keras", *args, jit_compile=False)


@pytest.mark.slow
def test_building_many_engines_logs_no_retracing_warning(trained_bundle, caplog):
    """Each engine traces its own functions once; TensorFlow's counter says
    "retracing" after a few engines. The filter that `import forecaster`
    installs drops exactly that warning."""
    context = np.linspace(100.0, 110.0, 10)[None, :]
    with caplog.at_level(logging.WARNING):
        for engine in _engines(trained_bundle, 8):
            engine.forecast(context, 3)
            engine.predict(np.ones((2, 10)))
    assert [r.getMessage() for r in caplog.records if RETRACING in r.getMessage()] == []


def test_other_warnings_are_left_alone(caplog):
    """The same warning about anyone else's function, and TensorFlow's other
    warnings, still show."""
    tensorflow = logging.getLogger("tensorflow")
    theirs = (
        "5 out of the last 5 calls to <function my_step at 0x7f> triggered "
        "tf.function retracing. Tracing is expensive"
    )
    ours = theirs.replace("my_step", "KerasEngine._build_loop.<locals>.loop")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        tensorflow.warning(theirs)
        tensorflow.warning("some other TensorFlow warning")
        tensorflow.warning(ours)
        logging.getLogger("forecaster").warning(ours)  # another logger: untouched
    shown = [r.getMessage() for r in caplog.records]
    assert shown == [theirs, "some other TensorFlow warning", ours]
    assert [r.name for r in caplog.records] == [
        "tensorflow",
        "tensorflow",
        "forecaster",
    ]
