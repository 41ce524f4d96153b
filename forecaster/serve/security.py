"""Safe by default: loopback unless a token guards the server; the token checked.

`check_bind` runs before the server listens: an address other than loopback
needs a token file. `BearerToken` is an ASGI middleware that answers 401 to
every request without `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import stat
from pathlib import Path

from forecaster.errors import ForecasterError

MIN_TOKEN_CHARS = 16  # a token shorter than this is refused as guessable


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only: 127.0.0.0/8, ::1 or localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token_file: str | os.PathLike | None) -> str | None:
    """The token to require, or None; refuse a non-loopback `host` without one."""
    if token_file is None:
        if not is_loopback(host):
            raise ForecasterError(
                f"host {host!r} is not a loopback address: serving beyond this "
                "machine needs token_file (a file holding a secret token that every "
                "request then sends as 'Authorization: Bearer TOKEN'). Received: "
                f"host={host!r}, token_file=None"
            )
        return None
    return read_token(token_file)


def read_token(token_file: str | os.PathLike) -> str:
    """The token in `token_file` (its first line), at least MIN_TOKEN_CHARS long."""
    path = Path(token_file)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ForecasterError(
            f"token_file cannot be read ({type(err).__name__}): give a readable "
            f"text file holding the token. Received: token_file={str(path)!r}"
        ) from None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise ForecasterError(
            f"token_file must hold one token of at least {MIN_TOKEN_CHARS} "
            'characters and no spaces (e.g. `python -c "import secrets; '
            f'print(secrets.token_urlsafe(32))"`). Received: token_file={str(path)!r}'
        )
    return token


def token_file_warning(token_file: str | os.PathLike) -> str | None:
    """A warning when other users may read the token file, else None."""
    mode = Path(token_file).stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return (
            f"token file {str(token_file)!r} is readable by other users: "
            f"chmod 600 {token_file}"
        )
    return None


class BearerToken:
    """ASGI middleware: every HTTP request needs `Authorization: Bearer <token>`."""

    def __init__(self, app, token: str):
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        """Pass the request on when its token matches; else answer 401."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                given = value
        if hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {"error": "missing or wrong token: send 'Authorization: Bearer TOKEN'"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
