"""Open311 GeoReport v2 over HTTP, mounted at ``/open311/v2`` by `wangge serve`.

Endpoints, each in JSON or XML by its suffix (XML is the format the
specification requires; JSON is offered too, as discovery says):

    GET  discovery.{json,xml}              the service discovery document
    GET  services.{json,xml}               the catalogue items open to requests
    GET  services/{service_code}.{fmt}     a service's attributes
    POST requests.{fmt}                    a new request (urlencoded form fields, up to 64 KiB; api_key required)
    GET  requests.{fmt}                    requests, filtered by id, service, status and dates
    GET  requests/{service_request_id}.{fmt}

Errors are the specification's error array (``[{"code": 404, "description":
...}]``, or ``<errors><error>`` in XML) with the same HTTP status; no
traceback ever reaches a client. The use cases live in `wangge.app.open311`.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl
from xml.etree import ElementTree

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from wangge.app import open311
from wangge.core import apikeys
from wangge.core.errors import WanggeError
from wangge.core.ruleset import Ruleset

log = logging.getLogger("wangge.open311")
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
#: The element of each item of a list, by the list's element (the specification's XML).
_ITEM = {"services": "service", "attributes": "attribute", "values": "value", "endpoints": "endpoint",
         "formats": "format", "service_requests": "request", "errors": "error"}
#: A POSTed form is a few fields: anything larger is refused before it is read.
MAX_FORM_BYTES = 64 * 1024


def render(fmt: str, root: str, value: Any, status: int = 200) -> Response:
    """``value`` as JSON, or as XML under the element ``root``."""
    if fmt == "json":
        body = json.dumps(value, ensure_ascii=False).encode("utf-8")
    else:
        element = _element(root, value)
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(element, encoding="unicode").encode()
    return Response(body, status_code=status, media_type=FORMATS[fmt])


def _element(tag: str, value: Any) -> ElementTree.Element:
    element = ElementTree.Element(tag)
    if isinstance(value, dict):
        for name, inner in value.items():
            element.append(_element(name, inner))
    elif isinstance(value, list):
        for inner in value:
            element.append(_element(_ITEM.get(tag, "item"), inner))
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)
    return element


def error(fmt: str, status: int, description: str) -> Response:
    return render(fmt, "errors", [{"code": status, "description": description}], status)


PREFIX = "/open311/v2"


def mount(store, rules: Callable[[], Optional[Ruleset]]) -> Mount:
    """Open311 as a route at `PREFIX`, for a master app that takes mounts."""
    return Mount(PREFIX, app=open311_app(store, rules))


def open311_app(office, rules: Callable[[], Optional[Ruleset]], now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
                ) -> Starlette:
    """The Open311 app over the master store ``office`` (a `wangge.core.store.Store`); ``rules``
    gives the ruleset in force (it may be hot-reloaded), ``now`` the time."""

    def endpoint(root: str, work: Callable[[Request, Ruleset], Any], *, form: bool = False):
        async def handle(request: Request) -> Response:
            fmt = request.path_params.get("fmt", "")
            if fmt not in FORMATS:
                return error("xml", 404, f"unknown format {fmt!r}: expected .xml or .json")
            try:
                ruleset = rules()
                if ruleset is None:
                    return error(fmt, 503, "this office has no ruleset yet: install one with --rules FILE.wg")
                fields = await _form(request) if form else {}
                return render(fmt, root, await run_in_threadpool(work, request, ruleset, fields))
            except open311.Open311Error as refused:
                return error(fmt, refused.status, refused.description)
            except WanggeError as refused:
                return error(fmt, 400, str(refused))
            except Exception:  # noqa: BLE001 - a client gets the error array, the log the traceback
                log.exception("open311 %s %s failed", request.method, request.url.path)
                return error(fmt, 500, "internal error: the office's log has the details")
        return handle

    def discovery(request: Request, ruleset: Ruleset, _):
        base = str(request.url).split("?", 1)[0].rsplit("/discovery", 1)[0]
        with office.write(actor="open311") as rec:
            changed = open311.changeset(rec, ruleset, now())
        return open311.discovery(base, ruleset, changed)

    def services(request: Request, ruleset: Ruleset, _):
        return open311.services(ruleset)

    def definition(request: Request, ruleset: Ruleset, _):
        return open311.service_definition(ruleset, request.path_params["code"])

    def create(request: Request, ruleset: Ruleset, fields: dict):
        key = _first(fields.get("api_key")) or request.query_params.get("api_key")
        with office.write(actor="open311") as rec:
            holder = apikeys.holder(rec.conn, key)
            if holder is not None:
                rec.actor = f"open311:{holder.name}"
            return open311.create_request(rec, ruleset, holder, fields, now())

    def listing(request: Request, ruleset: Ruleset, _):
        params = {k: request.query_params.getlist(k) for k in request.query_params.keys()}
        with office.read() as conn:
            return open311.requests(conn, ruleset, params, now())

    def one(request: Request, ruleset: Ruleset, _):
        with office.read() as conn:
            return open311.request(conn, ruleset, request.path_params["id"], now())

    routes = [
        Route("/discovery.{fmt}", endpoint("discovery", discovery), methods=["GET"]),
        Route("/services.{fmt}", endpoint("services", services), methods=["GET"]),
        Route("/services/{code}.{fmt}", endpoint("service_definition", definition), methods=["GET"]),
        Route("/requests.{fmt}", endpoint("service_requests", create, form=True), methods=["POST"]),
        Route("/requests.{fmt}", endpoint("service_requests", listing), methods=["GET"]),
        Route("/requests/{id}.{fmt}", endpoint("service_requests", one), methods=["GET"]),
    ]

    async def http_error(request: Request, exc) -> Response:
        # An unknown path or method still answers with the specification's error array.
        fmt = "json" if request.url.path.endswith(".json") else "xml"
        return error(fmt, exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")

    return Starlette(routes=routes, exception_handlers={404: http_error, 405: http_error})


async def _form(request: Request) -> dict[str, list[str]]:
    """The POSTed form's fields, each a list of its values, read up to `MAX_FORM_BYTES` (the
    specification posts application/x-www-form-urlencoded; a photo travels as media_url)."""
    kind = request.headers.get("content-type", "")
    if not kind.startswith("application/x-www-form-urlencoded"):
        raise open311.Open311Error(400, f"POST the request's fields as application/x-www-form-urlencoded, "
                                        f"got {kind or 'no content type'}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise open311.Open311Error(413, f"the request body is over {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise open311.Open311Error(400, "the request body is not UTF-8") from None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return fields


def _first(values: Optional[list[str]]) -> Optional[str]:
    return values[0] if values else None
