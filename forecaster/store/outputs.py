"""A bundle's optional outputs (plots, report): written when they can be, else left out.

The model, its settings and its scores are the bundle; what is drawn from
them is optional. forecaster.store.bundle calls `write_optional_outputs`
before the manifest, so a bundle lacking an output still verifies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("forecaster")


def write_optional_outputs(
    directory: Path, outputs: dict[str, Callable[[Path], None]]
) -> list[str]:
    """Write each optional output (plots, report); returns the names left out.

    An output that fails never costs the trained model: the bundle is saved
    without it, and one warning line names what was left out and why.
    """
    left_out = []
    for name, write in outputs.items():
        target = directory / name
        try:
            write(target)
        except Exception as err:  # any failure of an optional output: see above
            target.unlink(missing_ok=True)
            reason = str(err).splitlines()[0] if str(err) else ""
            log.warning(
                "%s was left out of the bundle: drawing it failed with %s%s; the "
                "model and its scores are saved",
                name,
                type(err).__name__,
                f" ({reason})" if reason else "",
            )
            left_out.append(name)
    return left_out
