"""GraphiQL at ``GET /graphql`` (``Accept: text/html``), served entirely by the gateway.

Strawberry's own page loads React, GraphiQL and the explorer plugin from a public CDN, so on a
machine without internet it stays blank. This page loads the copies vendored in
``gateway/static/graphiql`` (pinned, with their licences; see
``scripts/fetch_graphiql_assets.py``) from ``/static``, and its Content-Security-Policy lets
the browser load nothing from any other origin. It opens with a storefront query and an
example mutation (``templates/graphiql-default.graphql``) and a hint in the Headers tab."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from string import Template

from starlette.requests import Request
from starlette.responses import HTMLResponse

from gateway.assets import STATIC_DIR, vendored_path

TEMPLATES = Path(__file__).resolve().parent / "templates"
INIT_SCRIPT = "graphiql/gateway-graphiql.js"

DEFAULT_HEADERS = json.dumps(
    {"Authorization": "Bearer <paste a token; queries need none>"}, indent=2
)
"""The Headers tab's first contents: a hint that the page leaves out of requests."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        # GraphiQL and CodeMirror set style attributes; the fonts and icons are data: URLs.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


@cache
def default_document() -> str:
    return (TEMPLATES / "graphiql-default.graphql").read_text()


@cache
def _template() -> Template:
    return Template((TEMPLATES / "graphiql.html").read_text())


@cache
def _version_tag(path: str) -> str:
    """A short content hash for the gateway's own (unversioned) script, to bust caches."""
    return hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:12]


def _script_json(value: object) -> str:
    """JSON that is safe inside a <script> element (no "</script>", no "<!--")."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_graphiql(root_path: str, endpoint: str) -> str:
    """The page's HTML; ``root_path`` prefixes ``/static`` (an app mounted under a path)."""
    static = f"{root_path.rstrip('/')}/static"
    config = {
        "url": endpoint,
        "defaultQuery": default_document(),
        "defaultHeaders": DEFAULT_HEADERS,
    }
    return _template().substitute(
        react=f"{static}/{vendored_path('react', 'react.production.min.js')}",
        react_dom=f"{static}/{vendored_path('react-dom', 'react-dom.production.min.js')}",
        graphiql_js=f"{static}/{vendored_path('graphiql', 'graphiql.min.js')}",
        graphiql_css=f"{static}/{vendored_path('graphiql', 'graphiql.min.css')}",
        explorer_js=f"{static}/{vendored_path('plugin-explorer', 'index.umd.js')}",
        explorer_css=f"{static}/{vendored_path('plugin-explorer', 'style.css')}",
        init_js=f"{static}/{INIT_SCRIPT}?v={_version_tag(INIT_SCRIPT)}",
        config=_script_json(config),
    )


def graphiql_response(request: Request) -> HTMLResponse:
    """What ``GatewayGraphQL.render_graphql_ide`` answers."""
    root_path: str = request.scope.get("app_root_path", request.scope.get("root_path", ""))
    html = render_graphiql(root_path, request.url.path)
    return HTMLResponse(
        html,
        headers={
            "cache-control": "no-cache",
            "content-security-policy": CONTENT_SECURITY_POLICY,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
        },
    )


__all__ = ["CONTENT_SECURITY_POLICY", "default_document", "graphiql_response", "render_graphiql"]
