"""Progress people can read: plain per-epoch lines in logs, count/time-left lines.

On a terminal Keras draws its progress bar; when stdout is a file or a pipe
(`python train.py > log.txt`) the bar's carriage returns and escape codes
would fill the log, so training writes one plain line per epoch instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def keras_display(verbose: int, stream=None) -> tuple[list, int]:
    """The callbacks and Keras `verbose` for a training run's progress display.

    verbose 0 shows nothing; otherwise a terminal gets Keras' bar (verbose 1)
    and anything else one `EpochLine` per epoch (Keras itself silent).
    """
    stream = stream or sys.stdout
    if verbose == 0:
        return [], 0
    if _is_terminal(stream):
        return [], verbose
    return [EpochLine(stream).callback()], 0


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


def format_epoch(epoch: int, epochs: int, logs: dict, seconds: float) -> str:
    """One plain line: 'epoch 3/50  loss 1.1539e-04  val_loss 1.8562e-04  1.4 s'."""
    parts = [f"epoch {epoch}/{epochs}"]
    for name in ("loss", "val_loss"):
        if name in logs:
            parts.append(f"{name} {float(logs[name]):.4e}")
    parts.append(f"{seconds:.1f} s")
    return "  ".join(parts)


class EpochLine:
    """Writes `format_epoch` for every epoch, flushed at once.

    Plain Python, so importing this module never loads Keras; `callback()`
    wraps it in a Keras callback.
    """

    def __init__(self, stream=None, clock: Callable[[], float] = time.perf_counter):
        self.stream = stream or sys.stdout
        self.clock = clock
        self.started = clock()

    def begin(self) -> None:
        self.started = self.clock()

    def end(self, epoch: int, epochs: int, logs: dict | None) -> str:
        line = format_epoch(epoch, epochs, logs or {}, self.clock() - self.started)
        self.stream.write(line + "\n")
        self.stream.flush()
        return line

    def callback(self):
        """A keras.callbacks.Callback calling `begin` and `end` around each epoch."""
        import keras

        lines = self

        class _EpochLineCallback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                lines.begin()

            def on_epoch_end(self, epoch, logs=None):
                epochs = (self.params or {}).get("epochs") or epoch + 1
                lines.end(epoch + 1, epochs, logs)

        return _EpochLineCallback()


def progress_line(label: str, done: int, total: int, elapsed: float) -> str:
    """'series 3/10 (AAPL): 3 done, 7 left, about 14 s left' from the mean so far.

    `elapsed` is the seconds spent on the `done` items; the time left assumes
    the remaining ones take as long on average.
    """
    if total < 1:
        raise ValueError(f"total must be at least 1. Received: total={total}")
    if not 0 <= done <= total:
        raise ValueError(
            f"done must be between 0 and total={total}. Received: done={done}"
        )
    left = total - done
    text = f"{label}: {done} done, {left} left"
    if done and left:
        text += f", about {_duration(elapsed / done * left)} left"
    elif not left:
        text += f", took {_duration(elapsed)}"
    return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Counts finished items (series, trials) and writes a `progress_line` for each.

    progress = Progress(total=10, noun="series", write=log.info)
    for name in names: ...; progress.done(name)
    """

    def __init__(
        self,
        total: int,
        noun: str,
        write: Callable[[str], None],
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.total, self.noun, self.write, self.clock = total, noun, write, clock
        self.count = 0
        self.started = clock()

    def done(self, name: str = "") -> str:
        """Count one more item finished, write its line and return it."""
        self.count += 1
        label = f"{self.noun} {self.count}/{self.total}"
        if name:
            label += f" ({name})"
        line = progress_line(label, self.count, self.total, self.clock() - self.started)
        self.write(line)
        return line
