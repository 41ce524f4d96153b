"""The HTTP application: health, the models, their forecasts and reports (FastAPI).

    app = create_app("models")            # uvicorn forecaster.serve.app:app ...
    GET  /health
    GET  /models                          every bundle: model, series, dates, scores
    GET  /models/{name}
    GET  /models/{name}/forecast?days=&samples=&seed=&series=   JSON, or CSV
    POST /models/{name}/forecast          newer prices (JSON rows or CSV)
    GET  /models/{name}/report            the report page

It forecasts with the NumPy engine only and never imports TensorFlow.
Every error is one line of JSON, {"error": "..."}: 404 for a name that is not
a bundle directly under MODELS_DIR, 409 for a damaged bundle (the others keep
serving), 422 for a bad value, 413 for an oversized body, 503 for a bundle
that changed during every read.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from forecaster.errors import BundleError, ForecasterError
from forecaster.report.html import render_report
from forecaster.serve.answers import (
    CSV_TYPE,
    DEFAULT_DAYS,
    DEFAULT_SAMPLES,
    MAX_BODY_BYTES,
    MAX_DAYS,
    MAX_SAMPLES,
    MAX_SEED,
    ForecastQuery,
    compute,
    forecast_frame,
    parse_series,
    prices_from_body,
)
from forecaster.serve.bundles import BundleShelf, BusyError, LoadedBundle, NotFoundError
from forecaster.serve.fast import CachedAnswers, answer
from forecaster.serve.security import BearerToken
from forecaster.version import __version__

log = logging.getLogger("forecaster.serve")

# The report embeds plotly.js and its data inline: the page may load nothing.
REPORT_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
)
STATUS = {NotFoundError: 404, BusyError: 503, BundleError: 409, ForecasterError: 422}


def one_line(text: str) -> str:
    """`text` on one line (an error message for a JSON body)."""
    return " ".join(str(text).split())


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    """The one-line JSON error every failure answers with."""
    return JSONResponse({"error": one_line(message)}, status, headers=headers)


def create_app(models_dir, token: str | None = None) -> FastAPI:
    """The application serving the bundles under `models_dir`; `token` guards it.

    /docs is Swagger UI from files served here (fastapi-offline): opening it
    loads nothing from another host. No /redoc: ReDoc fetches its logo from
    its maker's site.
    """
    shelf = BundleShelf(models_dir, warm=warm)
    app = FastAPIOffline(
        title="forecaster",
        version=__version__,
        description="Forecasts from the saved bundles under MODELS_DIR (NumPy engine).",
        swagger_ui_parameters={"validatorUrl": None},  # no badge from swagger.io
        redoc_url=None,
    )
    app.state.shelf = shelf
    add_error_handlers(app)
    add_model_routes(app, shelf)
    add_forecast_routes(app, shelf)
    app.add_middleware(CachedAnswers, shelf=shelf)  # inside the token check
    if token is not None:
        app.add_middleware(BearerToken, token=token)
    return app


def add_error_handlers(app: FastAPI) -> None:
    """Every error as one line of JSON, never a traceback."""

    @app.exception_handler(ForecasterError)
    async def forecaster_error(request: Request, err: ForecasterError):
        status = next(code for kind, code in STATUS.items() if isinstance(err, kind))
        return error(status, str(err))

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, err: RequestValidationError):
        first = err.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        received = str(first.get("input"))[:60]
        return error(422, f"{where}: {first.get('msg')}. Received: {where}={received}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException):
        message = err.detail
        if err.status_code == 404:
            path = request.url.path
            message = f"no such endpoint: {request.method} {path}; see /docs"
        return error(err.status_code, message, getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception):
        log.error("unexpected error on %s", request.url.path, exc_info=err)
        return error(500, f"internal error ({type(err).__name__}); see the server log")


def warm(bundle: LoadedBundle) -> None:
    """Compute the default answer (tomorrow's bands, JSON) of a newly read bundle."""
    query = ForecastQuery()
    bundle.answer(query.key(), lambda: compute(bundle, query))


async def cached(bundle: LoadedBundle, key: tuple, make: Callable[[], bytes]) -> bytes:
    """The answer `key` of `bundle`: kept, being computed, or computed now.

    Requests for the same answer while it is computed wait for that one
    computation (in a worker thread) instead of each starting their own.
    """
    body = bundle.answers.get(key)
    if body is not None:
        return body
    pending = bundle.pending.get(key)
    if pending is None:
        pending = asyncio.ensure_future(run_in_threadpool(bundle.answer, key, make))
        bundle.pending[key] = pending
        pending.add_done_callback(lambda _: bundle.pending.pop(key, None))
    return await asyncio.shield(pending)


async def bundle_for(shelf: BundleShelf, name: str) -> LoadedBundle:
    """The bundle as it is now: from memory, or read again in a worker thread."""
    return shelf.current(name) or await run_in_threadpool(shelf.get, name)


def add_model_routes(app: FastAPI, shelf: BundleShelf) -> None:
    """GET /health, /models, /models/{name}, /models/{name}/report."""

    @app.get("/health", summary="The server is up")
    def health() -> dict:
        return {
            "status": "ok",
            "version": __version__,
            "engine": "numpy",
            "tensorflow_loaded": "tensorflow" in sys.modules,
            "models": len(shelf.names()),
        }

    @app.get("/models", summary="Every bundle: model, series, dates, headline scores")
    def models() -> dict:
        rows = []
        for name in shelf.names():
            try:
                rows.append(shelf.get(name).summary)
            except ForecasterError as err:
                rows.append({"name": name, "status": "damaged", "problem": str(err)})
        return {"models": rows}

    @app.get("/models/{name}", summary="One bundle: its summary, settings and scores")
    async def model(name: str) -> dict:
        bundle = await bundle_for(shelf, name)
        return {
            **bundle.summary,
            "settings": bundle.model.settings.to_dict(),
            "metrics": bundle.model.metrics_,
        }

    @app.get("/models/{name}/report", summary="The bundle's report page (HTML)")
    async def report(name: str) -> Response:
        bundle = await bundle_for(shelf, name)
        page = bundle.report
        if page is None:  # not saved with one: drawn from the bundle, kept
            page = await cached(bundle, ("report",), lambda: draw_report(bundle))
        headers = {"Content-Security-Policy": REPORT_POLICY, "ETag": bundle.version}
        return Response(page, media_type="text/html", headers=headers)


def draw_report(bundle: LoadedBundle) -> bytes:
    """A report page for a bundle saved without one, with today's forecast."""
    frame = forecast_frame(bundle, ForecastQuery(days=5, samples=200))
    history = None
    if bundle.model.single_:
        part = next(iter(bundle.model.panel_.parts.values()))
        history = pd.Series(part.prices, index=part.dates)
    page = render_report(bundle.model.bundle_.path, history, frame, own_source=False)
    return page.encode()


def add_forecast_routes(app: FastAPI, shelf: BundleShelf) -> None:
    """GET and POST /models/{name}/forecast."""
    days_query = Query(DEFAULT_DAYS, ge=1, le=MAX_DAYS, description="trading days")
    samples_query = Query(
        DEFAULT_SAMPLES, ge=1, le=MAX_SAMPLES, description="paths drawn"
    )
    seed_query = Query(0, ge=0, le=MAX_SEED, description="seed of the sampled paths")

    @app.get("/models/{name}/forecast", summary="Forecast from the saved prices")
    async def get_forecast(
        request: Request,
        name: str,
        days: int = days_query,
        samples: int = samples_query,
        seed: int = seed_query,
        series: str | None = Query(None, description="a panel's series, a,b,..."),
    ) -> Response:
        query = ForecastQuery(
            days, samples, seed, parse_series(series), wants_csv(request)
        )
        bundle = await bundle_for(shelf, name)
        body = await cached(bundle, query.key(), lambda: compute(bundle, query))
        return answer(bundle, body, query)

    @app.post("/models/{name}/forecast", summary="Forecast from newer prices")
    async def post_forecast(
        request: Request,
        name: str,
        days: int = days_query,
        samples: int = samples_query,
        seed: int = seed_query,
    ) -> Response:
        raw = await read_body(request)
        query = ForecastQuery(days, samples, seed, (), wants_csv(request))
        bundle = await bundle_for(shelf, name)
        content_type = request.headers.get("content-type", "")
        prices = prices_from_body(raw, content_type)
        body = await run_in_threadpool(compute, bundle, query, prices)
        return answer(bundle, body, query)


def wants_csv(request: Request) -> bool:
    """Whether the client asked for CSV (Accept: text/csv)."""
    return CSV_TYPE in request.headers.get("accept", "")


async def read_body(request: Request) -> bytes:
    """The request body, refused with 413 past MAX_BODY_BYTES (never read further)."""
    declared = request.headers.get("content-length")
    too_big = f"the request body is larger than {MAX_BODY_BYTES} bytes: send fewer days"
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"{too_big}. Received: {declared} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, too_big)
        chunks.append(chunk)
    return b"".join(chunks)
