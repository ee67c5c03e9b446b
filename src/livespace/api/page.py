"""The live page at ``/``: its HTML and its content-hashed assets.

The page is built from ``clients/page`` (``make install`` runs the build) into
``livespace/static``: ``index.html`` and ``assets/<name>-<hash>.<ext>``. An asset's name
changes whenever its content does, so assets are cached for a year as immutable, while
``index.html`` is ``no-cache`` (revalidated on every load, answered 304 when unchanged):
a deploy reaches every open tab on its next load, and nothing stale is ever mixed in.

The page signs in with the workspace and token in the URL fragment, which browsers do
not send, so ``/`` never sees a token; ``Referrer-Policy: no-referrer`` keeps even the
page's address out of other requests.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

from livespace.codes import Error, Problem

STATIC = Path(__file__).resolve().parent.parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
#: The only content types the page ships; anything else under /assets is not ours.
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
_ASSET_NAME = re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$")
#: Scripts, styles and sockets from this origin only; no inline code, no framing.
POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
))
PAGE_HEADERS = {
    "Content-Security-Policy": POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>livespace: page not built</title></head>
<body><h1>The live page is not built</h1>
<p>The server is running (see <a href="/docs">/docs</a>), but the page's files are not in
<code>{path}</code>. Build them with <code>make install</code> (or
<code>npm ci --prefix clients/page &amp;&amp; npm run build --prefix clients/page</code>)
and reload.</p></body></html>
"""

router = APIRouter(tags=["page"])


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def index(request: Request) -> Response:
    """The page (``no-cache``: every load asks, a 304 answers when nothing changed)."""
    path = STATIC / "index.html"
    try:
        body = path.read_bytes()
    except FileNotFoundError:
        return HTMLResponse(NOT_BUILT.format(path=STATIC), status_code=503,
                            headers={"Cache-Control": "no-store", "Retry-After": "60"})
    tag = _etag(body)
    headers = {**PAGE_HEADERS, "Cache-Control": "no-cache", "ETag": tag}
    if tag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return HTMLResponse(body, headers=headers)


@router.api_route("/assets/{name}", methods=["GET", "HEAD"], include_in_schema=False)
async def asset(name: str) -> Response:
    """A content-hashed asset, cached for a year."""
    suffix = Path(name).suffix
    path = STATIC / "assets" / name
    if not _ASSET_NAME.match(name) or suffix not in CONTENT_TYPES or not path.is_file():
        raise Problem(Error.NOT_FOUND, f"no asset {name!r}")
    return FileResponse(
        path,
        media_type=CONTENT_TYPES[suffix],
        headers={"Cache-Control": IMMUTABLE, "X-Content-Type-Options": "nosniff"},
    )
