"""Answers already computed, sent without FastAPI's request handling.

A dashboard asks the same question again and again (tomorrow's bands of one
model), and its answer is kept per bundle version. FastAPI's parameter
checks cost more than half a millisecond a request, most of a cached answer's
time, so `CachedAnswers` (an ASGI middleware inside the token check) answers a
GET forecast whose plain query (digits within bounds, a series list of plain
names) names an answer kept for the bundle in memory. Anything else, an
error included, goes on to the application, which checks, computes and
answers as always; both build the response with `answer`.
"""

from __future__ import annotations

import re

from starlette.responses import Response

from forecaster.errors import ForecasterError
from forecaster.serve.answers import (
    CSV_TYPE,
    DEFAULT_DAYS,
    DEFAULT_SAMPLES,
    MAX_DAYS,
    MAX_SAMPLES,
    MAX_SEED,
    ForecastQuery,
    parse_series,
)
from forecaster.serve.bundles import BundleShelf, LoadedBundle

PLAIN_SERIES = re.compile(r"[A-Za-z0-9._,-]*")  # no escapes to decode
BOUNDS = {"days": (1, MAX_DAYS), "samples": (1, MAX_SAMPLES), "seed": (0, MAX_SEED)}


def answer(bundle: LoadedBundle, body: bytes, query: ForecastQuery) -> Response:
    """The forecast's bytes with their type and the bundle's version as ETag."""
    media = CSV_TYPE if query.csv else "application/json"
    return Response(body, media_type=media, headers={"ETag": bundle.version})


def plain_query(raw: bytes, csv: bool) -> ForecastQuery | None:
    """The forecast query in `raw` (a query string) if it is plain, else None.

    Plain: only days, samples, seed and series, each at most once; numbers
    in ASCII digits within their bounds. Anything else is for the
    application to check (and refuse, or read as it does).
    """
    values: dict[str, str] = {}
    for pair in raw.decode("latin-1").split("&") if raw else ():
        key, _, value = pair.partition("=")
        if key in values or key not in (*BOUNDS, "series"):
            return None
        values[key] = value
    numbers = {}
    for key, (low, high) in BOUNDS.items():
        text = values.get(key)
        if text is None:
            continue
        if not (text.isascii() and text.isdigit() and len(text) <= 10):
            return None
        numbers[key] = int(text)
        if not low <= numbers[key] <= high:
            return None
    series = values.get("series")
    if series is not None and not PLAIN_SERIES.fullmatch(series):
        return None
    return ForecastQuery(
        numbers.get("days", DEFAULT_DAYS),
        numbers.get("samples", DEFAULT_SAMPLES),
        numbers.get("seed", 0),
        parse_series(series),
        csv,
    )


def accept_header(scope: dict) -> str:
    """The request's first Accept header ('' without one), as Starlette reads it."""
    for key, value in scope.get("headers", ()):
        if key.lower() == b"accept":
            return value.decode("latin-1")
    return ""


class CachedAnswers:
    """ASGI middleware: a GET forecast kept for the bundle in memory, sent at once."""

    def __init__(self, app, shelf: BundleShelf):
        self.app = app
        self.shelf = shelf

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            response = self.kept(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def kept(self, scope: dict) -> Response | None:
        """The response to `scope` if it asks for a kept forecast, else None."""
        parts = scope["path"].split("/")
        if len(parts) != 4 or parts[1] != "models" or parts[3] != "forecast":
            return None
        query = plain_query(scope["query_string"], CSV_TYPE in accept_header(scope))
        if query is None:
            return None
        try:
            bundle = self.shelf.current(parts[2])
        except ForecasterError:  # no such model, damaged: the application says so
            return None
        body = bundle.answers.get(query.key()) if bundle is not None else None
        return answer(bundle, body, query) if body is not None else None
