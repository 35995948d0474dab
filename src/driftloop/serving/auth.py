"""Who may change the server: the admin token, and which web pages may call it.

Admin routes (promote, roll back, retrain, traffic) are never open by accident:

- ``driftloop serve`` with no token configured generates one, prints it once, and stores
  it in ``<data_dir>/admin-token`` readable by the owner only (as notebook servers do); a
  later start reads it back. Only ``--insecure-no-admin-auth`` leaves them open.
- :func:`create_app` without a token (and without ``insecure_no_admin_auth``) answers 403
  on every admin route, saying how to configure one.
- A token on the command line is visible to every local user in ``ps``: it still works,
  with a warning; the environment (``DRIFTLOOP_ADMIN_TOKEN``) or a token file is better.

A browser sends cookies and form posts across sites without asking, and a cross-site form
POST needs no CORS preflight, so a page on another origin could label, promote or retrain
through a user's browser. :class:`OriginGuard` refuses any state-changing request (every
method but GET, HEAD, OPTIONS) and any ``/ws`` handshake whose ``Origin`` header is neither
the server's own origin nor in ``allowed_origins``. Requests without ``Origin`` (curl, SDKs,
other servers) are not from a browser page and pass.

``/api/runs`` without the token shows :func:`public_run`: no training log, and no
traceback or absolute path in any message (they describe the server's insides).
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from driftloop.config import Settings
from driftloop.errors import ConfigError
from driftloop.serving.limits import header

logger = logging.getLogger(__name__)

TOKEN_FILE = "admin-token"
#: The admin token as OpenAPI's bearer scheme (the Authorize button of /docs); the check
#: itself is :func:`is_admin` on the same header, with the messages of :func:`admin_guard`.
BEARER = HTTPBearer(auto_error=False, scheme_name="admin token",
                    description="The admin token: `Authorization: Bearer <token>`.")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class AdminAuthError(ConfigError, RuntimeError):
    """The admin token cannot be set up as asked; the message says what to do."""


def read_token_file(path: Path) -> str:
    """The token in ``path``; refused when other users can read the file."""
    try:
        mode = path.stat().st_mode
        token = path.read_text().strip()
    except OSError as exc:
        raise AdminAuthError(f"admin_token_file: cannot read {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AdminAuthError(f"admin_token_file: {path} is readable by other users "
                             f"(mode {stat.filemode(mode)}); run `chmod 600 {path}`")
    if not token:
        raise AdminAuthError(f"admin_token_file: {path} is empty")
    return token


def configured_token(token: str | None, token_file: Path | None) -> str | None:
    """The admin token from the settings: the token itself, or the file's content."""
    if token:
        return token
    return read_token_file(token_file) if token_file is not None else None


def setup_admin_auth(settings: Settings, *, from_command_line: bool,
                     echo: Callable[[str], None]) -> Settings:
    """The admin token for ``driftloop serve``: ``settings`` with where the workers find it.

    A token from the environment or ``admin_token_file`` wins; with neither (and without
    ``insecure_no_admin_auth``), the token in ``<data_dir>/admin-token`` is used, generated
    and printed once if there is none yet.
    """
    if from_command_line:
        echo("warning: --admin-token is visible to every local user in `ps`; prefer "
             "DRIFTLOOP_ADMIN_TOKEN or --admin-token-file")
    token_file = settings.admin_token_file
    if settings.admin_token or token_file is not None:
        configured_token(settings.admin_token, token_file)  # fail now, not in a worker
        return settings
    if settings.insecure_no_admin_auth:
        echo("warning: --insecure-no-admin-auth: anyone who can reach this server can "
             "promote, roll back, retrain and change traffic")
        return settings
    token_file = Path(settings.data_dir) / TOKEN_FILE
    if token_file.exists():
        read_token_file(token_file)
        echo(f"admin token: in {token_file}")
    else:
        token_file.parent.mkdir(parents=True, exist_ok=True)
        fresh = secrets.token_urlsafe(32)
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(fresh + "\n")
        echo(f"admin token (shown once; stored in {token_file}, readable only by you):"
             f"\n  {fresh}")
    return settings.model_copy(update={"admin_token_file": token_file})


def admin_guard(token: str | None, *, insecure: bool,
                error: Callable[[int, str, dict[str, str] | None], Exception]
                ) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency: the request must carry ``Authorization: Bearer <token>``.

    Without a token the admin routes are disabled (403) unless ``insecure``."""
    async def require_admin(request: Request, _: Annotated[
            HTTPAuthorizationCredentials | None, Security(BEARER)]) -> None:
        if not token:
            if insecure:
                return
            raise error(403, "admin routes are disabled: no admin token is configured (set "
                        "DRIFTLOOP_ADMIN_TOKEN or admin_token_file; `driftloop serve` makes "
                        "one)", None)
        if not is_admin(request.headers.get("authorization"), token):
            raise error(401, "this endpoint needs the admin token: send "
                        "'Authorization: Bearer <token>'", {"WWW-Authenticate": "Bearer"})
    return require_admin


def is_admin(authorization: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header carries ``token`` (compared in constant time)."""
    if not token or not authorization:
        return False
    scheme, _, value = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), token.encode())


class OriginGuard:
    """Plain ASGI middleware: cross-origin state changes and ``/ws`` handshakes get 403."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed = frozenset(origin.rstrip("/").lower() for origin in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket" or (kind == "http" and scope["method"] not in SAFE_METHODS):
            origin = header(scope, b"origin")
            if origin is not None and not self._allowed(origin, header(scope, b"host")):
                await self._refuse(kind, origin, send)
                return
        await self.app(scope, receive, send)

    def _allowed(self, origin: str, host: str | None) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.allowed:
            return True
        parts = urlsplit(origin)
        return bool(host) and parts.scheme in ("http", "https") and \
            parts.netloc == (host or "").lower()

    @staticmethod
    async def _refuse(kind: str, origin: str, send: Send) -> None:
        logger.warning("refused a cross-origin %s from %r", kind, origin[:200])
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = (b'{"error": {"status": 403, "message": "cross-origin requests that change '
                b'state are refused: add the page\'s origin to allowed_origins", '
                b'"field": "Origin"}}')
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


_PATH = re.compile(r"(?<![\w.~])(?:/[^\s/'\"():,]+)+/?")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\):.*", re.DOTALL)


def _public_text(text: str) -> str:
    """``text`` without tracebacks, and absolute paths cut to their last part."""
    text = _TRACEBACK.sub("(traceback withheld)", text)
    return _PATH.sub(lambda m: "…/" + m.group().rstrip("/").rsplit("/", 1)[-1], text)


def public_run(run: Any) -> Any:
    """A run as anyone may see it: no training log, no paths, no tracebacks."""
    if isinstance(run, dict):
        return {k: public_run(v) for k, v in run.items() if k != "log_tail"}
    if isinstance(run, list):
        return [public_run(v) for v in run]
    return _public_text(run) if isinstance(run, str) else run
