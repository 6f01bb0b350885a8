"""The dashboard: one HTML page and its own small script, styles and field contract. No CDN."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

STATIC = Path(__file__).resolve().parents[2] / "static"


@get("/", include_in_schema=False, media_type="text/html")
async def index() -> Response[bytes]:
    return Response((STATIC / "index.html").read_bytes(), media_type="text/html",
                    headers={"Cache-Control": "no-cache"})


assets = create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False)
ROUTES: list[ControllerRouterHandler] = [index, assets]
