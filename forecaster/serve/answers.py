"""What a forecast request asks for, checked, and its answer as JSON or CSV bytes.

Requests are bounded: `days`, `samples` and, for a model that samples paths,
days x samples; a posted body is bounded in bytes. A bad value raises a
ForecasterError whose one line names the parameter and the value received.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass

import pandas as pd

from forecaster.config import ForecastSettings
from forecaster.data.csv import decode_text, parse_price_text
from forecaster.errors import BundleError, ForecasterError
from forecaster.serve.bundles import LoadedBundle

DEFAULT_DAYS = 1  # tomorrow's forecast and bands
MAX_DAYS = 100
DEFAULT_SAMPLES = ForecastSettings.samples  # paths drawn past one model call: the
#   library's default (predict.py --samples)
MAX_SAMPLES = 5000
MAX_PATH_DAYS = 50_000  # days x samples of one sampled forecast (about 15 s on 2 cores)
MAX_BODY_BYTES = 1 << 20  # a posted price history (a CSV of 1 MiB is ~20,000 days)
MAX_SEED = 2**32 - 1
CSV_TYPE = "text/csv"
# Sampled forecasts are CPU-bound: at most this many run at once, the rest wait.
COMPUTING = threading.BoundedSemaphore(2)


@dataclass(frozen=True)
class ForecastQuery:
    """The parameters of one forecast request, within bounds."""

    days: int = DEFAULT_DAYS
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    series: tuple[str, ...] = ()  # a panel's series to forecast (all when empty)
    csv: bool = False  # answer text/csv instead of JSON

    def key(self) -> tuple:
        """What identifies its answer for one bundle version."""
        return (self.days, self.samples, self.seed, self.series, self.csv)


def parse_series(text: str | None) -> tuple[str, ...]:
    """`series=AAA,BBB` (or repeated) as a tuple of names."""
    if not text:
        return ()
    return tuple(name.strip() for name in text.split(",") if name.strip())


def check_work(bundle: LoadedBundle, query: ForecastQuery) -> None:
    """Refuse a sampled forecast of more than MAX_PATH_DAYS days x samples."""
    head = bundle.model.get_engine("numpy").head
    work = query.days * query.samples
    if head.probabilistic and query.days > 1 and work > MAX_PATH_DAYS:
        raise ForecasterError(
            f"days x samples must be at most {MAX_PATH_DAYS} for this model, which "
            f"draws sampled paths. Received: days={query.days}, "
            f"samples={query.samples}; ask fewer samples or fewer days."
        )


def forecast_frame(bundle: LoadedBundle, query: ForecastQuery, prices=None):
    """The forecast of `bundle` for `query`: from its saved prices, or `prices`."""
    check_work(bundle, query)
    model = bundle.model
    options = {"engine": "numpy", "samples": query.samples, "seed": query.seed}
    if prices is not None:
        return model.forecast(query.days, prices=prices, **options)
    if not bundle.can_forecast:
        raise BundleError(
            f"Model {bundle.name!r} keeps no recent prices (saved by forecaster "
            "0.1): POST newer prices to /models/{name}/forecast, or retrain it."
        )
    parts = model.panel_.parts
    if query.series:
        unknown = [name for name in query.series if name not in parts]
        if unknown:
            raise ForecasterError(
                f"series must name series of model {bundle.name!r} "
                f"({', '.join(parts)}). Received: series={','.join(unknown)}"
            )
        parts = {name: parts[name] for name in query.series}
    return model.forecast_from(parts, query.days, **options)


def render(bundle: LoadedBundle, frame: pd.DataFrame, query: ForecastQuery) -> bytes:
    """The answer's bytes: CSV rows, or JSON with the model, its version and rows."""
    if query.csv:
        return frame.to_csv(index=False).encode()
    body = {
        "model": bundle.name,
        "version": bundle.version,
        "engine": "numpy",
        "days": query.days,
        "rows": json_rows(frame),
    }
    if bundle.model.get_engine("numpy").head.probabilistic and query.days > 1:
        body.update(samples=query.samples, seed=query.seed)
    return json.dumps(body, allow_nan=False).encode()


def json_rows(frame: pd.DataFrame) -> list[dict]:
    """The frame's rows as dicts of plain Python values, NaN and infinities as None.

    Built column by column from NumPy (a tenth of pandas' to_dict's time).
    """
    names = [str(name) for name in frame.columns]
    columns = [json_values(frame[name].to_numpy().tolist()) for name in frame.columns]
    return [
        dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)
    ]


def json_values(values: list) -> list:
    """`values` with every float that is not finite (NaN, inf) as None."""
    return [
        None if isinstance(value, float) and not math.isfinite(value) else value
        for value in values
    ]


def compute(bundle: LoadedBundle, query: ForecastQuery, prices=None) -> bytes:
    """`forecast_frame` then `render`, at most COMPUTING's count at a time."""
    with COMPUTING:
        frame = forecast_frame(bundle, query, prices)
    return render(bundle, frame, query)


def prices_from_body(raw: bytes, content_type: str) -> pd.Series:
    """Posted prices: JSON rows ({"prices": [{date, price}, ...]} or a bare list),
    or a CSV body (a date column and a price column, Yahoo's layout too)."""
    where = "the request body"
    if "json" in content_type:
        text = _json_rows_as_csv(raw)
    elif CSV_TYPE in content_type or "text/plain" in content_type:
        text = decode_text(raw, where)
    else:
        raise ForecasterError(
            "the request body must be JSON (Content-Type: application/json) or CSV "
            f"(Content-Type: {CSV_TYPE}). Received: Content-Type={content_type!r}"
        )
    prices, _ = parse_price_text(text, where, None)
    return prices


def _json_rows_as_csv(raw: bytes) -> str:
    """JSON price rows as CSV text, for the same parser as a CSV body."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ForecasterError(
            f"the request body is not valid JSON ({err.__class__.__name__}: "
            f'{str(err)[:80]}): send {{"prices": [{{"date": ..., "price": '
            "...}, ...]}."
        ) from None
    rows = data.get("prices") if isinstance(data, dict) else data
    if (
        not isinstance(rows, list)
        or not rows
        or not all(isinstance(row, dict) for row in rows)
    ):
        raise ForecasterError(
            'the request body must hold price rows: {"prices": [{"date": '
            '"2024-01-02", "price": 185.6}, ...]}. Received: '
            f"{type(rows).__name__}"
        )
    return pd.DataFrame(rows).to_csv(index=False)
