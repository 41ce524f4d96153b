"""yfinance.download in a fresh interpreter, for a process whose HTTP stack is broken.

Used only when `forecaster.httpstack.http_stack_works()` is false in the
calling process (curl_cffi bound to TensorFlow's libcurl). The child imports
forecaster first, so its curl_cffi is isolated, never imports TensorFlow, and
sends back the frame and what yfinance logged as one JSON document on stdout.

    python -m forecaster.data.fetch < request.json > reply.json
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd

from forecaster.httpstack import isolate_curl_cffi

CHILD_TIMEOUT_S = 300  # yfinance's own requests time out well before this


class ChildDownloadError(Exception):
    """An exception raised by yfinance in the child, under its original class name."""

    def __init__(self, original_name: str, message: str):
        super().__init__(message)
        self.original_name = original_name


def download_in_child(tickers, **kwargs) -> pd.DataFrame:
    """Call yfinance.download(tickers, **kwargs) in a child process; same result.

    What yfinance logs in the child is logged again on the "yfinance" logger
    here, and its exception is raised again as ChildDownloadError.
    """
    request = json.dumps({"tickers": tickers, "kwargs": kwargs})
    done = subprocess.run(
        [sys.executable, "-m", "forecaster.data.fetch"],
        input=request,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
        env=_child_env(),
    )
    try:
        reply = json.loads(done.stdout)
    except ValueError:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ChildDownloadError(
            "ChildProcessError", f"the download process failed: {last[:200]}"
        ) from None
    for message in reply["logged"]:
        logging.getLogger("yfinance").error(message)
    if reply["error"] is not None:
        raise ChildDownloadError(*reply["error"])
    return frame_from_json(reply["frame"]) if reply["frame"] else None


def _child_env() -> dict:
    """This environment, with forecaster's own folder first on the import path."""
    root = str(Path(__file__).resolve().parents[2])
    paths = [root, *filter(None, [os.environ.get("PYTHONPATH")])]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def frame_to_json(frame: pd.DataFrame) -> dict:
    """A download's frame (DatetimeIndex, flat or MultiIndex columns) as plain JSON."""
    columns = frame.columns
    return {
        "index": [stamp.isoformat() for stamp in frame.index],
        "columns": [list(c) if isinstance(c, tuple) else [c] for c in columns],
        "names": [str(n) if n is not None else None for n in columns.names],
        "data": frame.to_numpy(dtype=float, na_value=float("nan")).tolist(),
    }


def frame_from_json(raw: dict) -> pd.DataFrame:
    """The inverse of `frame_to_json`."""
    tuples = [tuple(c) for c in raw["columns"]]
    if len(raw["names"]) > 1:
        columns = pd.MultiIndex.from_tuples(tuples, names=raw["names"])
    else:
        columns = pd.Index([t[0] for t in tuples], name=raw["names"][0])
    index = pd.DatetimeIndex(pd.to_datetime(raw["index"]), name="Date")
    return pd.DataFrame(raw["data"], index=index, columns=columns, dtype=float)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def main() -> int:
    """Read the request on stdin, download, write the reply on stdout."""
    isolate_curl_cffi()  # before yfinance loads curl_cffi (done already by -m)
    request = json.loads(sys.stdin.read())
    collect = _Collect()
    yf_log = logging.getLogger("yfinance")
    yf_log.addHandler(collect)
    yf_log.propagate = False
    reply = {"frame": None, "error": None, "logged": collect.messages}
    with quiet_library_warnings():
        try:
            import yfinance

            frame = yfinance.download(request["tickers"], **request["kwargs"])
            if isinstance(frame, pd.DataFrame):
                reply["frame"] = frame_to_json(frame)
        except Exception as err:  # sent back to be classified by the caller
            reply["error"] = [type(err).__name__, str(err)]
    json.dump(reply, sys.stdout)
    return 0


@contextlib.contextmanager
def quiet_library_warnings():
    """Hide the deprecation warnings that yfinance and its HTTP stack raise.

    Only warnings attributed to those libraries are hidden, and only inside
    the block; forecaster's own warnings and those of the user's code pass.
    """
    with warnings.catch_warnings():
        for module in (r"yfinance(\.|$)", r"curl_cffi(\.|$)", r"peewee"):
            warnings.filterwarnings("ignore", module=module)
        yield


if __name__ == "__main__":
    sys.exit(main())
