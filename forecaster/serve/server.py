"""Run the HTTP server (uvicorn) on the bundles of a directory, safely bound.

The address is checked before anything listens: a non-loopback host needs a
token file (forecaster.serve.security).
"""

from __future__ import annotations

import logging

import uvicorn

from forecaster.serve.app import create_app
from forecaster.serve.security import check_bind, token_file_warning

log = logging.getLogger("forecaster.serve")
KEEP_ALIVE_SECONDS = 30  # an idle connection is kept this long (uvicorn's is 5 s)


def serve(
    models_dir="models",
    host: str = "127.0.0.1",
    port: int = 8000,
    token_file=None,
    access_log: bool = True,
) -> None:
    """Serve the bundles under `models_dir` on `host`:`port` until interrupted.

    Refuses, before listening, a `host` other than loopback without a
    `token_file`; with one, every request needs its token.
    """
    token = check_bind(host, token_file)
    if token_file is not None:
        warning = token_file_warning(token_file)
        if warning:
            log.warning(warning)
    app = create_app(models_dir, token)
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=access_log,
        log_level="info",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
