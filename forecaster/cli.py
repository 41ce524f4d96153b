"""Command-line plumbing: logging to stderr, one-line errors instead of tracebacks."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable

from forecaster.errors import ForecasterError


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run a script's `main`, turning errors into one line on stderr and exit code 2.

    Set FORECASTER_DEBUG=1 to see the full traceback of an unexpected error.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # yfinance under pandas 3 warns about its own internals on every download.
    warnings.filterwarnings("ignore", module="yfinance")
    try:
        return main(argv)
    except ForecasterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "error: interrupted; nothing was saved (use --resume to continue training)",
            file=sys.stderr,
        )
        return 130
    except Exception as err:  # a bug or an environment fault: still one line
        if os.environ.get("FORECASTER_DEBUG"):
            raise
        message = (str(err).splitlines() or [""])[0][:300]
        print(
            f"error: unexpected {type(err).__name__}: {message} "
            "(set FORECASTER_DEBUG=1 "
            "for the traceback)",
            file=sys.stderr,
        )
        return 1


def quiet_tensorflow() -> None:
    """Import TensorFlow with its C++ start-up chatter (oneDNN, CUDA probing) hidden.

    Those lines are written to file descriptor 2 before TensorFlow's own log
    level applies, so stderr is pointed at /dev/null while it loads. Python
    errors still propagate normally.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
