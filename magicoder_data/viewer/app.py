"""The viewer's web app: Starlette routes over `data`, pages from Jinja2 templates, a JSON API.

Every request opens its run read-only, so a run being generated can be watched as it grows,
and nothing the viewer does can change a run. Templates autoescape, a Content-Security-Policy
allows only the app's own scripts and styles, and static files come from the package's own
folder (no CDN: it works offline).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..errors import MagicoderDataError
from ..store import RunStore
from . import data, render
from .search import SearchIndexes

log = logging.getLogger("magicoder_data")
HERE = Path(__file__).parent
#: Only the app's own scripts, styles and images; no frames, no forms elsewhere.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


#: Pygments' colours for the highlighted code.
STYLE = render.style_sheet()


def run_names(runs: Sequence[Path]) -> dict[str, Path]:
    """Each run by a short name for `?run=`: its folder's name, numbered when two share one."""
    names: dict[str, Path] = {}
    for path in runs:
        name, n = path.resolve().name, 2
        while name in names:
            name, n = f"{path.resolve().name}-{n}", n + 1
        names[name] = path
    return names


#: The names a loopback viewer answers to: a page of any other site that points its own name at
#: 127.0.0.1 (DNS rebinding) gets a 400, not the runs.
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def create_app(runs: Sequence[Path], hosts: Sequence[str] = LOOPBACK) -> Starlette:
    """The viewer over `runs` (each checked to open read-only now, so a typo fails at once),
    answering only requests whose Host header is one of `hosts` ("*": any)."""
    names = run_names(runs)
    for path in names.values():
        RunStore.open(path, readonly=True).close()
    templates = Jinja2Templates(env=render.environment())
    templates.env.globals.update(run_names=list(names))
    indexes = SearchIndexes()
    benchmark_items: dict[str, dict[tuple[str, str], Any]] = {}

    def chosen(request: Request) -> tuple[str, Path]:
        name = request.query_params.get("run") or next(iter(names))
        if name not in names:
            raise data.BadRequest(f"no run named {name!r}", 404)
        return name, names[name]

    def page(template: str, build: Callable[[RunStore, Request], dict[str, Any]]):  # type: ignore[no-untyped-def]
        def endpoint(request: Request) -> Response:
            name, path = chosen(request)
            with RunStore.open(path, readonly=True) as store:
                context = build(store, request)
            context["run"] = name
            return templates.TemplateResponse(request, template, context)

        return endpoint

    def api(build: Callable[[RunStore, Request], Any]):  # type: ignore[no-untyped-def]
        def endpoint(request: Request) -> Response:
            _, path = chosen(request)
            with RunStore.open(path, readonly=True) as store:
                return JSONResponse(_plain(build(store, request)))

        return endpoint

    def samples(store: RunStore, request: Request) -> data.SamplePage:
        name, _ = chosen(request)
        wanted = data.SampleFilter.parse(dict(request.query_params))
        return data.samples_page(store, wanted, lambda q: indexes.of(name).condition(store, q))

    def seed_id(request: Request) -> int:
        found = int(request.path_params["seed_id"])
        if found >= 1 << 63:  # past SQLite's integers: no seed has it
            raise data.BadRequest(f"no seed {found} in this run", 404)
        return found

    def detail(store: RunStore, request: Request) -> dict[str, Any]:
        found = data.sample_detail(store, seed_id(request))
        name, _ = chosen(request)
        if name not in benchmark_items:
            benchmark_items[name] = data.benchmark_items(store)
        items = benchmark_items[name]
        return {
            "sample": found,
            "items": {
                (e.benchmark, e.item_id): items.get((e.benchmark, e.item_id))
                for e in found.evidence
            },
        }

    routes = [
        Route("/", page("index.html", lambda s, r: {"view": data.overview(s)})),
        Route("/samples", page("samples.html", lambda s, r: {"page": samples(s, r)})),
        Route("/samples/{seed_id:int}", page("sample.html", detail)),
        Route("/drops", page("drops.html", lambda s, r: {"groups": data.drop_groups(s)})),
        Route("/contamination", page("contamination.html", lambda s, r: {"flags": data.flags(s)})),
        Route("/api/runs", lambda request: JSONResponse({"runs": list(names)})),
        Route("/api/overview", api(lambda s, r: data.overview(s))),
        Route("/api/samples", api(samples)),
        Route(
            "/api/samples/{seed_id:int}",
            api(lambda s, r: data.sample_detail(s, seed_id(r))),
        ),
        Route("/api/drops", api(lambda s, r: data.drop_groups(s))),
        Route("/api/contamination", api(lambda s, r: data.flags(s))),
        Route("/pygments.css", lambda request: Response(STYLE, media_type="text/css")),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    def failed(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        context = {"status": status, "message": message, "run": None}
        return templates.TemplateResponse(request, "error.html", context, status_code=status)

    async def bad_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, data.BadRequest)
        return failed(request, exc.status, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return failed(request, exc.status_code, exc.detail)

    async def run_error(request: Request, exc: Exception) -> Response:
        return failed(request, 503, str(exc))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("viewer: %s failed", request.url.path)
        return failed(request, 500, "the viewer failed on this page; its log says why")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        indexes.close()

    return Starlette(
        routes=routes,
        exception_handlers={
            data.BadRequest: bad_request,
            HTTPException: http_error,
            MagicoderDataError: run_error,
            Exception: server_error,
        },
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
            Middleware(BaseHTTPMiddleware, dispatch=_headers),
        ],
        lifespan=lifespan,
    )


async def _headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
    """Every answer forbids scripts and styles from anywhere but the app itself."""
    response = await call_next(request)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _plain(value: Any) -> Any:
    """Dataclasses (and lists of them) as JSON-ready dicts."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
