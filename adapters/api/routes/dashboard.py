"""The dashboard: one HTML page, its own scripts, styles and field contract, and plotly.js. No CDN.

plotly.js is the file the installed `plotly` package bundles (the same one the
HTML report inlines): served from the package, never copied into the repository.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from tradeledger.adapters.report_html import plotly_js as plotly_text

STATIC = Path(__file__).resolve().parents[2] / "static"


@get("/", include_in_schema=False, media_type="text/html")
async def index() -> Response[bytes]:
    return Response((STATIC / "index.html").read_bytes(), media_type="text/html",
                    headers={"Cache-Control": "no-cache"})


@get("/vendor/plotly.min.js", include_in_schema=False, media_type="text/javascript")
async def plotly_js() -> Response[bytes]:
    # Versioned by the installed package: a browser may keep it for a day.
    return Response(plotly_text().encode(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


assets = create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False)
ROUTES: list[ControllerRouterHandler] = [index, plotly_js, assets]
