"""Choosing the input features on the validation slice: `features="auto"`.

When every series has High and Low, each candidate set in `CANDIDATES` (close
alone, and close beside the day's range estimators, forecaster.prep.ranges)
trains the configured network for a short schedule, and the set with the
lowest validation loss (the head's own loss, on the newest training windows)
is kept; the test days choose nothing. Without High/Low it is close alone,
with a note saying so. The choice and every candidate's validation loss go
into the bundle's metadata.json; the chosen set is the saved settings'.

Candidates share the series and the settings, so they are scored on the same
scaled target; a candidate whose features need a first day (Yang-Zhang's
previous close) starts one day later, which moves its split by a day.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

from forecaster.config import Settings
from forecaster.data.frames import panel_from_pandas
from forecaster.prep.panel import prepare_panel
from forecaster.prep.ranges import has_range

log = logging.getLogger("forecaster")

AUTO = "auto"  # the features setting that asks for this choice
CANDIDATES = (  # the sets compared, close alone first (it wins ties)
    "close",
    "close,parkinson",
    "close,yang_zhang",
    "close,parkinson,garman_klass,rogers_satchell,yang_zhang",
)
SHORT_EPOCHS = 6  # epochs each candidate trains for the choice
SHORT_PATIENCE = 2  # its early-stopping patience


@dataclass
class FeatureChoice:
    """The features chosen, and what the choice rested on."""

    features: str  # the chosen set, as PrepSettings.features takes it
    val_loss: dict = field(default_factory=dict)  # candidate -> best validation loss
    reason: str = ""  # one line for the run's notes
    epochs: int = 0  # the most epochs each candidate trained

    def record(self) -> dict:
        """What metadata.json keeps of the choice."""
        return {
            "chosen": self.features,
            "chosen_on": "validation",
            "validation_loss": self.val_loss,
            "epochs_each": self.epochs,
            "reason": self.reason,
        }


def choose_features(
    prices, settings: Settings, candidates=None, epochs: int | None = None
) -> FeatureChoice:
    """The candidate feature set with the lowest validation loss on `prices`.

    `prices`: anything `Forecaster.fit` takes. Each candidate trains the
    network of `settings` for at most `epochs` epochs, without scoring the
    test days. Without High/Low on every series: close, and a note.
    `candidates` and `epochs` default to CANDIDATES and SHORT_EPOCHS.
    """
    from forecaster.train.fit import fit_model  # lazy: it imports TensorFlow

    panel = panel_from_pandas(prices, settings.data.column)
    if not all(has_range(item) for item in panel.values()):
        reason = "features: close only (the input has no High/Low for range features)"
        return FeatureChoice("close", {}, reason)
    losses = {}
    for features in candidates or CANDIDATES:
        trial = _short(settings, features, epochs or SHORT_EPOCHS)
        prepared = prepare_panel(panel, trial.prep, features)
        result = fit_model(list(prepared.parts.values()), trial)
        losses[features] = min(float(row["val_loss"]) for row in result.history)
        log.info("features %s: validation loss %.5f", features, losses[features])
    best = min(losses.values())
    chosen = next(name for name, loss in losses.items() if loss <= best)
    shown = ", ".join(f"{name} {loss:.4f}" for name, loss in losses.items())
    reason = f"features: {chosen}, chosen on validation loss ({shown})"
    return FeatureChoice(chosen, losses, reason, epochs or SHORT_EPOCHS)


def _short(settings: Settings, features: str, epochs: int) -> Settings:
    """A copy of `settings` with `features` and the short schedule."""
    trial = copy.deepcopy(settings)
    trial.prep.features = features
    trial.train.epochs = min(epochs, settings.train.epochs)
    trial.train.patience = min(SHORT_PATIENCE, settings.train.patience)
    trial.train.verbose = 0
    return trial
