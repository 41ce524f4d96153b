"""Early stopping with resumable checkpoints: the state a killed run resumes from.

`EarlyStoppingCheckpoint` watches val_loss, keeps the best weights and, with
a checkpoint directory, writes the last model, the best weights and its
counters there (atomically) after every epoch; `resume_state` reads them
back for `--resume`, refusing a checkpoint trained with other settings.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from forecaster.config import Settings
from forecaster.errors import ForecasterError
from forecaster.io import discard_directory, recover_if_free, write_directory_atomically

log = logging.getLogger("forecaster")


def resume_state(settings: Settings, checkpoint_dir, resume: bool):
    """The CheckpointState in `checkpoint_dir` to resume from; None for a fresh run.

    With `resume`, raises when there is no checkpoint or when it was trained
    with other settings, and logs where the run picks up.
    """
    state = CheckpointState.read(checkpoint_dir) if resume else None
    if resume and state is None:
        raise ForecasterError(
            f"resume found no checkpoint at {str(checkpoint_dir)!r}: nothing to "
            "resume. Start a new run instead. Received: resume=True"
        )
    if state is not None:
        train = settings.train
        _check_same_run(state, settings, checkpoint_dir)
        log.info(_resume_note(state, checkpoint_dir, train.epochs, train.patience))
    return state


def _resume_note(state, directory, epochs: int, patience: int) -> str:
    """What --resume found and where it picks up, for the log."""
    found = (
        f"--resume: found {state.epochs_done} finished epochs in {str(directory)!r} "
        f"(best val_loss {state.best:.4e} at epoch {state.best_epoch}, "
        f"{state.wait} epochs without improvement)"
    )
    if patience > 0 and state.wait >= patience:
        return found + "; that run had stopped early, nothing left to train"
    if state.epochs_done >= epochs:
        return found + f"; --epochs {epochs} is reached, nothing left to train"
    return found + f"; resuming at epoch {state.epochs_done + 1} of {epochs}"


@dataclass
class CheckpointState:
    """What a checkpoint directory holds after an epoch: counters, history, files.

    Written by `EarlyStoppingCheckpoint` (state.json, last.keras,
    best.weights.npz); `read` gives it back for `--resume`.
    """

    epochs_done: int
    best: float
    best_epoch: int
    wait: int
    history: list[dict]
    model_path: Path
    best_weights_path: Path
    run_key: dict

    @classmethod
    def read(cls, directory) -> CheckpointState | None:
        """The state saved in `directory`, or None when there is none."""
        if directory is None:
            return None
        directory = Path(directory)
        recover_if_free(directory, "checkpoint")
        path = directory / "state.json"
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text())
            return cls(
                epochs_done=int(raw["epochs_done"]),
                best=float(raw["best"]),
                best_epoch=int(raw["best_epoch"]),
                wait=int(raw["wait"]),
                history=list(raw["history"]),
                model_path=directory / "last.keras",
                best_weights_path=directory / "best.weights.npz",
                run_key=dict(raw["run_key"]),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise ForecasterError(
                f"The checkpoint at {str(directory)!r} is damaged ({err!r}); "
                "start a new run instead of resuming."
            ) from None


class EarlyStoppingCheckpoint(keras.callbacks.Callback):
    """Early stopping on val_loss that restores the best weights and can be resumed.

    Keras' own EarlyStopping forgets its state between runs; this one writes
    the last model, the best weights and its counters after every epoch.
    """

    def __init__(
        self,
        patience: int,
        checkpoint_dir=None,
        state: CheckpointState | None = None,
        run_key: dict | None = None,
    ):
        super().__init__()
        self.run_key = run_key or {}
        self.patience = patience
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.best = state.best if state else np.inf
        self.best_epoch = state.best_epoch if state else 0
        self.wait = state.wait if state else 0
        self.history = list(state.history) if state else []
        self.epochs_done = state.epochs_done if state else 0
        self.best_weights = None
        if state is not None:
            with np.load(state.best_weights_path) as saved:
                self.best_weights = [saved[f"w{i}"] for i in range(len(saved.files))]

    @property
    def finished(self) -> bool:
        """True when a resumed run had already stopped early."""
        return self.patience > 0 and self.epochs_done > 0 and self.wait >= self.patience

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        val_loss = float(logs.get("val_loss", np.nan))
        self.history.append(
            {
                "epoch": epoch + 1,
                "loss": float(logs.get("loss", np.nan)),
                "val_loss": val_loss,
            }
        )
        self.epochs_done = epoch + 1
        if val_loss < self.best:
            self.best, self.best_epoch, self.wait = val_loss, epoch + 1, 0
            self.best_weights = [w.copy() for w in self.model.get_weights()]
        else:
            self.wait += 1
        if self.checkpoint_dir is not None:
            self._save_checkpoint()
        if self.patience > 0 and self.wait >= self.patience:
            self.model.stop_training = True

    def restore_best(self, model) -> None:
        if self.best_weights is not None:
            model.set_weights(self.best_weights)

    def _save_checkpoint(self) -> None:
        def write(tmp: Path) -> None:
            self.model.save(tmp / "last.keras")
            np.savez(
                tmp / "best.weights.npz",
                **{f"w{i}": w for i, w in enumerate(self.best_weights)},
            )
            (tmp / "state.json").write_text(
                json.dumps(
                    {
                        "epochs_done": self.epochs_done,
                        "best": self.best,
                        "best_epoch": self.best_epoch,
                        "wait": self.wait,
                        "history": self.history,
                        "run_key": self.run_key,
                    }
                )
            )

        write_directory_atomically(
            self.checkpoint_dir, write, replace=True, what="checkpoint"
        )


def discard_checkpoint(checkpoint_dir) -> None:
    """Remove a finished run's checkpoint (renamed away first: never half-removed)."""
    if checkpoint_dir is not None:
        discard_directory(checkpoint_dir)


def run_key_of(settings: Settings) -> dict:
    """Settings a resumed run must share with the killed one (not epochs, patience)."""
    key = settings.to_dict()
    for name in ("epochs", "patience", "verbose"):
        key["train"].pop(name)
    return key


def _check_same_run(state: CheckpointState, settings: Settings, directory) -> None:
    now = run_key_of(settings)
    if state.run_key != now:
        changed = sorted(
            f"{part}.{name}"
            for part in now
            for name in now[part]
            if state.run_key.get(part, {}).get(name) != now[part][name]
        )
        raise ForecasterError(
            f"resume: the checkpoint at {str(directory)!r} was trained with other "
            f"settings ({', '.join(changed)} differ). Resume with the same settings, "
            "or start a new run."
        )
