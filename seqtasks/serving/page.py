"""The web page at `/`: one static file (static/index.html, its CSS and JS inline) that asks
`/info` what the model is and draws that task's form. It loads nothing from anywhere else, and its
Content-Security-Policy says so to the browser: it works offline, and a page that tried to fetch
a script or font from elsewhere would be stopped."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'"
)


def page_html() -> str:
    return resources.files("seqtasks.serving").joinpath("static", "index.html").read_text(encoding="utf-8")


def add_page(app: FastAPI) -> None:
    """Serve the page at `/`, in place of LitServe's own "litserve running"."""
    routes = app.router.routes
    routes[:] = [route for route in routes if not (isinstance(route, APIRoute) and route.path == "/")]
    html = page_html()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": POLICY, "Cache-Control": "no-cache"})
