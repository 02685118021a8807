"""The HTTP layer every service's API is built on.

A service declares routes on an ``Api``; each handler takes a ``Request`` and
returns a JSON-able body, ``None`` (empty body) or a Starlette ``Response``.
Plain functions run in the thread pool (they may touch the database);
``async`` handlers run on the event loop (streaming bodies). Errors raised as
``ApiError`` become the service's own error body.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as RawRequest
from starlette.responses import Response
from starlette.routing import Route

from pocketstack.common import errors
from pocketstack.common.context import RequestContext, new_request_id

LOG = logging.getLogger(__name__)

# Plain handlers run here: one hop through the loop's executor machinery costs a third
# of anyio's to_thread (Starlette's run_in_threadpool), which matters at thousands of
# small requests a second.
_BLOCKING = concurrent.futures.ThreadPoolExecutor(max_workers=40, thread_name_prefix="api")


async def run_blocking(fn: Callable, *args) -> Any:
    """Call a blocking ``fn`` on the API thread pool, in the caller's context."""
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(_BLOCKING, call)

REQUEST_ID_HEADER = "x-openstack-request-id"


try:  # orjson is several times faster; the output is the same compact UTF-8 JSON
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None


def dumps(body: Any) -> bytes:
    if _orjson is not None:
        try:
            return _orjson.dumps(body)
        except (TypeError, _orjson.JSONEncodeError):
            pass  # e.g. integers beyond 64 bits: the standard library handles them
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


class Request:
    """What a handler sees: the raw request, its parsed parts and its context."""

    __slots__ = ("raw", "path_params", "query", "headers", "body", "context", "state", "api")

    def __init__(self, raw: RawRequest, api: Api):
        self.raw = raw
        self.api = api
        self.path_params = raw.path_params
        self.query = raw.query_params
        self.headers = raw.headers
        self.body = b""
        self.context: RequestContext | None = None
        self.state: dict[str, Any] = {}

    @property
    def method(self) -> str:
        return self.raw.method

    @property
    def request_id(self) -> str:
        return self.raw.scope.get("request_id") or new_request_id()

    @property
    def base_url(self) -> str:
        """URL of the service root (its mount prefix), without a trailing slash."""
        url = self.raw.url
        return f"{url.scheme}://{url.netloc}{self.raw.scope.get('root_path', '')}".rstrip("/")

    @property
    def url(self) -> str:
        return str(self.raw.url)

    def json(self, required: bool = True) -> Any:
        if not self.body:
            if required:
                raise errors.BadRequest("Malformed request body: a JSON body is required.")
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.BadRequest(f"Malformed JSON in request body: {exc}") from None

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter as OpenStack services read them."""
        value = self.query.get(name)
        if value is None:
            return default
        if value == "":
            return True
        lowered = value.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise errors.BadRequest(f"Invalid value '{value}' for boolean query parameter '{name}'.")


@dataclass
class RouteSpec:
    path: str
    methods: tuple[str, ...]
    handler: Callable
    status: int
    auth: bool | str  # True, False or "optional"
    raw_body: bool


class Api:
    """A service's routes plus how it formats errors and authenticates."""

    def __init__(self, *, error_body: Callable[[errors.ApiError], Response],
                 authenticate: Callable | None = None,
                 before: Callable[[Request], None] | None = None,
                 after: Callable[[Request, Response], None] | None = None,
                 max_body_size: int = 114688):
        self.routes: list[RouteSpec] = []
        self.error_body = error_body
        self.authenticate = authenticate
        self.before = before
        self.after = after
        self.max_body_size = max_body_size

    def route(self, path: str, methods: tuple[str, ...] | str = ("GET",), *, status: int = 200,
              auth: bool | str = True, raw_body: bool = False):
        """Register a handler. ``raw_body`` handlers read the body themselves."""
        if isinstance(methods, str):
            methods = (methods,)

        def register(handler: Callable) -> Callable:
            self.routes.append(RouteSpec(path, tuple(methods), handler, status, auth, raw_body))
            return handler

        return register

    def include(self, other: Api) -> None:
        self.routes.extend(other.routes)

    # -- running a request -------------------------------------------------

    async def _read_body(self, req: Request) -> None:
        declared = req.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_size:
            raise errors.RequestEntityTooLarge("Request is too large.")
        chunks = []
        size = 0
        async for chunk in req.raw.stream():
            size += len(chunk)
            if size > self.max_body_size:
                raise errors.RequestEntityTooLarge("Request is too large.")
            chunks.append(chunk)
        req.body = b"".join(chunks)

    def _endpoint(self, spec: RouteSpec):
        is_async = inspect.iscoroutinefunction(spec.handler)

        async def endpoint(raw: RawRequest) -> Response:
            req = Request(raw, self)
            try:
                if spec.auth and self.authenticate is not None:
                    req.context = await self.authenticate(req, required=spec.auth is True)
                if self.before is not None:
                    self.before(req)
                if not spec.raw_body:
                    await self._read_body(req)
                if is_async:
                    result = await spec.handler(req)
                else:
                    result = await run_blocking(spec.handler, req)
                response = self._to_response(result, spec.status)
            except errors.ApiError as err:
                response = self.error_response(err)
            except Exception:
                LOG.exception("Unhandled error in %s %s", raw.method, raw.url.path)
                response = self.error_response(errors.InternalError())
            if self.after is not None:
                self.after(req, response)
            return response

        return endpoint

    def _to_response(self, result: Any, status: int) -> Response:
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status_code=status if status != 200 else 204)
        return JSONResponse(result, status_code=status)

    def error_response(self, err: errors.ApiError) -> Response:
        response = self.error_body(err)
        response.status_code = err.status
        for key, value in err.headers.items():
            response.headers[key] = value
        return response

    def app(self) -> Starlette:
        routes = [Route(s.path, self._endpoint(s), methods=list(s.methods)) for s in self.routes]

        async def http_error(raw: RawRequest, exc: HTTPException) -> Response:
            err = errors.for_status(exc.status_code)
            if exc.status_code == 405:
                err.message = f"The method {raw.method} is not allowed for this resource."
            response = self.error_response(err)
            if self.after is not None:
                self.after(Request(raw, self), response)
            return response

        return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


class RequestIdMiddleware:
    """Gives every request an id and every response the X-OpenStack-Request-ID header."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = new_request_id()
        scope["request_id"] = request_id
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


def keystone_error_body(err: errors.ApiError) -> Response:
    """Identity's error shape, also used where an API documents no other."""
    return JSONResponse({"error": {"code": err.status, "title": err.title,
                                   "message": err.message}})


NOVA_FAULT_NAMES = {
    400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
    405: "badMethod", 406: "notAcceptable", 409: "conflictingRequest", 413: "overLimit",
    415: "badMediaType", 429: "overLimit", 501: "notImplemented", 503: "serviceUnavailable",
}


def nova_error_body(err: errors.ApiError) -> Response:
    """Compute's and block storage's error shape: {"itemNotFound": {...}}."""
    name = err.kind or NOVA_FAULT_NAMES.get(err.status, "computeFault")
    return JSONResponse({name: {"code": err.status, "message": err.message}})
