"""The dashboard's web app: routes over one Redis, and how it is served.

``mageflow ui`` calls :func:`serve`; tests and embedders call
:func:`create_app` with anything that has a store and the lifecycle methods
(a mageflow client does). Every page reads Redis afresh; the app keeps no
state of its own but the shared live subscription (:mod:`.live`).

Routes:

``GET /``                         the list of workflows (``?status=&task=&offset=``)
``GET /rows``                     the list's live part, for the page's script
``GET /find?id=``                 open a signature by id
``GET /workflows/{id}``           one workflow: graph, progress, details
``GET /workflows/{id}/live``      its live part
``GET /workflows/{id}/graph.svg`` its graph alone, to save
``GET /events?workflow=``         Server-Sent Events: ``change`` when it moved
``POST /workflows/{id}/{action}`` pause, resume, stop, retry or remove
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from html import escape
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mageflow.errors import (
    CorruptSignatureError,
    InvalidTransitionError,
    SignatureNotFoundError,
)
from mageflow.graph import to_svg
from mageflow.store import SignatureStore
from mageflow.tree import TreeNode, build_tree
from mageflow.ui import live
from mageflow.ui.control import (
    ACTIONS,
    DESTRUCTIVE,
    TOKEN_COOKIE,
    TOKEN_HEADER,
    Access,
)
from mageflow.ui.pages import environment, trusted_svg
from mageflow.ui.reading import Filters, list_workflows, nodes, watched_ids

logger = logging.getLogger("mageflow.ui")

COLLAPSE_OVER = 20
"""A swarm with more items than this is drawn as counts until expanded."""
PAGE_SIZE = 50
"""Items per page of an expanded swarm, and rows per page of the list."""

SECURITY_HEADERS = {
    # No inline script can run, whatever a stored value contains.
    "content-security-policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # The token may be in the address once: never send it elsewhere.
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class Controls(Protocol):
    """What the dashboard needs: a store to read, and the lifecycle to steer
    (a :class:`~mageflow.HatchetMageflow` client is one)."""

    @property
    def store(self) -> SignatureStore: ...

    async def pause(self, signature_id: str) -> None: ...

    async def resume(self, signature_id: str) -> None: ...

    async def stop(self, signature_id: str) -> None: ...

    async def retry(self, signature_id: str) -> None: ...

    async def remove(self, signature_id: str) -> int: ...


Endpoint = Callable[[Request], Awaitable[Response]]


def create_app(
    controls: Controls,
    access: Access | None = None,
    *,
    collapse_over: int = COLLAPSE_OVER,
    page_size: int = PAGE_SIZE,
) -> Starlette:
    """The dashboard over ``controls.store``'s Redis, with ``access`` (by
    default: read only, no token, for a loopback address)."""
    access = access or Access()
    store = controls.store
    hub = live.Hub(store.redis)
    templates = environment()

    def guarded(endpoint: Endpoint) -> Endpoint:
        """Serve only requests that carry the token, when there is one."""

        @functools.wraps(endpoint)
        async def guard(request: Request) -> Response:
            query_token = request.query_params.get("token")
            if query_token is not None and access.admits(query_token):
                # Jupyter's way: keep it in a cookie, drop it from the address.
                rest = {k: v for k, v in request.query_params.items() if k != "token"}
                target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
                response: Response = RedirectResponse(target, status_code=303)
                response.set_cookie(
                    TOKEN_COOKIE,
                    query_token,
                    httponly=True,
                    samesite="strict",
                    path="/",
                )
                return _secured(response)
            presented = request.headers.get(TOKEN_HEADER) or request.cookies.get(
                TOKEN_COOKIE
            )
            if not access.admits(presented):
                return _secured(
                    HTMLResponse(
                        "<!doctype html><title>mageflow</title><p>This dashboard "
                        "needs its token: open the address it printed at start "
                        "(it ends in <code>?token=...</code>).</p>",
                        status_code=401,
                    )
                )
            return _secured(await endpoint(request))

        return guard

    def page(request: Request, name: str, status: int = 200, **values: Any) -> Response:
        values.setdefault("events_url", "")
        values.setdefault("live_url", "")
        html = templates.get_template(name).render(
            url_for=request.url_for,
            allow_control=access.allow_control,
            control_token=access.token if access.allow_control else None,
            page_size=page_size,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def problem(request: Request, status: int, message: str) -> Response:
        return page(request, "problem.html", status, message=message)

    # --- the list ---------------------------------------------------------------

    async def list_values(request: Request) -> dict[str, Any]:
        filters = Filters(
            status=request.query_params.get("status", ""),
            task=request.query_params.get("task", ""),
        )
        offset = _int(request.query_params.get("offset"), 0)
        result = await list_workflows(store, filters, offset=offset, count=page_size)
        query = {"status": filters.status, "task": filters.task}

        def at(new_offset: int) -> str:
            return "?" + urlencode({**query, "offset": max(0, new_offset)})

        return {
            "page": result,
            "filters": filters,
            "offset": offset,
            "newer_url": at(offset - page_size),
            "older_url": at(offset + page_size),
            "query": urlencode({**query, "offset": offset}),
        }

    async def list_page(request: Request) -> Response:
        values = await list_values(request)
        return page(
            request,
            "list.html",
            events_url=str(request.url_for("events")),
            live_url=f"{request.url_for('rows')}?{values['query']}",
            **values,
        )

    async def rows(request: Request) -> Response:
        return page(request, "_rows.html", **await list_values(request))

    async def find(request: Request) -> Response:
        wanted = request.query_params.get("id", "").strip()
        if not wanted:
            return RedirectResponse(str(request.url_for("list")), status_code=303)
        return RedirectResponse(
            str(request.url_for("workflow", signature_id=wanted)), status_code=303
        )

    # --- one workflow -----------------------------------------------------------

    async def read_tree(request: Request) -> TreeNode:
        expand = request.query_params.get("expand")
        pages = {expand: _int(request.query_params.get("page"), 0)} if expand else {}
        return await build_tree(
            store,
            request.path_params["signature_id"],
            collapse_over=collapse_over,
            pages=pages,
            page_size=page_size,
        )

    def workflow_values(request: Request, tree: TreeNode) -> dict[str, Any]:
        base = str(request.url_for("workflow", signature_id=tree.id))

        def expand_url(swarm_id: str, number: int) -> str:
            return f"{base}?{urlencode({'expand': swarm_id, 'page': number})}"

        def href(node: TreeNode) -> str | None:
            if node.kind == "swarm" and node.shown == (0, 0):
                return expand_url(node.id, 0)
            return f"#node-{node.id}"

        swarms = []
        for node in nodes(tree):
            if node.kind != "swarm" or node.shown is None or node.total is None:
                continue
            number = node.shown[0] // page_size
            swarms.append(
                {
                    "id": node.id,
                    "task_name": node.task_name,
                    "total": node.total,
                    "finished": node.counts.get("finished", 0),
                    "failed": node.counts.get("failed", 0),
                    "running": node.counts.get("running", 0),
                    "shown": node.shown,
                    "expand_url": expand_url(node.id, 0),
                    "prev_url": expand_url(node.id, number - 1) if number else None,
                    "next_url": expand_url(node.id, number + 1)
                    if node.shown[1] < node.total
                    else None,
                    "collapse_url": base,
                }
            )
        return {
            "tree": tree,
            "nodes": list(nodes(tree)),
            "svg": trusted_svg(to_svg(tree, href=href)),
            "swarms": swarms,
        }

    async def workflow(request: Request) -> Response:
        try:
            tree = await read_tree(request)
        except SignatureNotFoundError as exc:
            return problem(request, 404, str(exc))
        except CorruptSignatureError as exc:
            return problem(request, 422, str(exc))
        query = request.url.query
        live_url = str(request.url_for("workflow_live", signature_id=tree.id))
        events_url = str(request.url_for("events"))
        return page(
            request,
            "workflow.html",
            events_url=f"{events_url}?{urlencode({'workflow': tree.id})}",
            live_url=f"{live_url}?{query}" if query else live_url,
            actions=ACTIONS,
            destructive=DESTRUCTIVE,
            control_base=f"{request.url_for('workflow', signature_id=tree.id)}/",
            **workflow_values(request, tree),
        )

    async def workflow_live(request: Request) -> Response:
        try:
            tree = await read_tree(request)
        except (SignatureNotFoundError, CorruptSignatureError) as exc:
            return HTMLResponse(f"<p class='problem'>{escape(str(exc))}</p>", 404)
        return page(request, "_workflow.html", **workflow_values(request, tree))

    async def svg(request: Request) -> Response:
        try:
            tree = await read_tree(request)
        except (SignatureNotFoundError, CorruptSignatureError) as exc:
            return problem(request, 404, str(exc))
        return Response(to_svg(tree), media_type="image/svg+xml")

    # --- live -------------------------------------------------------------------

    async def events(request: Request) -> Response:
        workflow_id = request.query_params.get("workflow")

        async def watched() -> set[str] | None:
            if workflow_id is None:
                return None
            try:
                tree = await build_tree(store, workflow_id, collapse_over=collapse_over)
            except (SignatureNotFoundError, CorruptSignatureError):
                return {workflow_id}
            return await watched_ids(store, tree)

        async def stream() -> AsyncIterator[str]:
            with hub.watch(await watched()) as watch:

                async def refresh() -> None:
                    watch.ids = await watched()

                async for chunk in live.events(watch, refresh):
                    yield chunk

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"x-accel-buffering": "no"},
        )

    # --- control ----------------------------------------------------------------

    async def control(request: Request) -> Response:
        signature_id = request.path_params["signature_id"]
        action = request.path_params["action"]
        refused = access.may_control(
            header_token=request.headers.get(TOKEN_HEADER),
            origin=request.headers.get("origin"),
            fetch_site=request.headers.get("sec-fetch-site"),
            own_origin=f"{request.url.scheme}://{request.url.netloc}",
        )
        if refused is not None:
            return JSONResponse({"message": refused}, status_code=403)
        if action not in ACTIONS:
            return JSONResponse(
                {"message": f"no control {action!r}: use one of {', '.join(ACTIONS)}."},
                status_code=404,
            )
        try:
            if action == "remove":
                removed = await controls.remove(signature_id)
                return JSONResponse(
                    {
                        "message": f"removed {signature_id} ({removed} keys).",
                        "gone": str(request.url_for("list")),
                    }
                )
            await getattr(controls, action)(signature_id)
        except SignatureNotFoundError as exc:
            return JSONResponse({"message": str(exc)}, status_code=404)
        except (InvalidTransitionError, CorruptSignatureError) as exc:
            return JSONResponse({"message": str(exc)}, status_code=409)
        except Exception as exc:  # the engine or Redis: say so, keep serving
            logger.warning(
                "mageflow ui: %s %s failed", action, signature_id, exc_info=True
            )
            hint = (
                " Resume and retry start runs: give the dashboard the "
                "HATCHET_CLIENT_* settings of the engine the workers use."
                if action in ("resume", "retry")
                else ""
            )
            return JSONResponse(
                {"message": f"{action} failed: {type(exc).__name__}: {exc}.{hint}"},
                status_code=502,
            )
        signature = await store.load(signature_id)
        status = signature.status.value if signature is not None else "gone"
        return JSONResponse(
            {"message": f"{action}: {signature_id} is {status}.", "status": status}
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.aclose()

    static = StaticFiles(directory=Path(__file__).with_name("static"))
    return Starlette(
        routes=[
            Route("/", guarded(list_page), name="list"),
            Route("/rows", guarded(rows), name="rows"),
            Route("/find", guarded(find), name="find"),
            Route("/events", guarded(events), name="events"),
            Route("/workflows/{signature_id}", guarded(workflow), name="workflow"),
            Route(
                "/workflows/{signature_id}/live",
                guarded(workflow_live),
                name="workflow_live",
            ),
            Route("/workflows/{signature_id}/graph.svg", guarded(svg), name="svg"),
            Route(
                "/workflows/{signature_id}/{action}",
                guarded(control),
                methods=["POST"],
                name="control",
            ),
            Mount("/static", static, name="static"),
        ],
        lifespan=lifespan,
    )


def _secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _int(raw: str | None, default: int) -> int:
    try:
        return max(0, int(raw)) if raw is not None else default
    except ValueError:
        return default


def bind(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (0: any free port), made before
    the server starts, so the address printed is the one bound and a taken
    port fails here, with the OS's reason."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def address(sock: socket.socket, access: Access, path: str = "/") -> str:
    """The URL to open for ``sock``: with the token when there is one, so
    opening it lets the browser in."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    query = f"?token={access.token}" if access.token is not None else ""
    return f"http://{shown}:{port}{path}{query}"


def server(controls: Controls, access: Access, **options: Any) -> uvicorn.Server:
    """A uvicorn server of the dashboard; ``await server.serve(sockets=[sock])``
    runs it in the current event loop (where ``controls``' Redis lives)."""
    app = create_app(controls, access, **options)
    return uvicorn.Server(uvicorn.Config(app, log_level="warning"))


def serve(
    controls: Controls,
    access: Access,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the dashboard until interrupted; ``announce`` gets the address
    to open (see :func:`address`).

    :raises OSError: the address cannot be bound (the port is taken).
    """
    sock = bind(host, port)
    announce(f"mageflow ui: {address(sock, access)}")
    server(controls, access).run(sockets=[sock])
