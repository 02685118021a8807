"""Bulk delete: many objects and containers in one request (Swift's format)."""

from __future__ import annotations

import json
import urllib.parse
from xml.sax.saxutils import escape

from starlette.responses import Response

from pocketstack.common import errors


async def delete(req, store, account: str, raw: bytes, opts, *, can_write, is_owner: bool):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.BadRequest("Invalid UTF-8 in request body.") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > opts.max_deletes_per_request:
        raise errors.RequestEntityTooLarge(
            f"Maximum Bulk Deletes: {opts.max_deletes_per_request} per request")
    result = {"deleted": 0, "not_found": 0, "errors": []}
    for line in lines:
        path = urllib.parse.unquote(line).lstrip("/")
        cont, _, obj = path.partition("/")
        try:
            if not cont:
                raise errors.BadRequest("Invalid container name")
            if obj:
                if not can_write(cont):
                    raise errors.Forbidden()
                if await store.delete_object(account, cont, obj):
                    result["deleted"] += 1
                else:
                    result["not_found"] += 1
            else:
                if not is_owner:
                    raise errors.Forbidden()
                from starlette.concurrency import run_in_threadpool

                await run_in_threadpool(store.delete_container, account, cont)
                result["deleted"] += 1
        except errors.NotFound:
            result["not_found"] += 1
        except errors.ApiError as err:
            result["errors"].append([urllib.parse.quote("/" + path),
                                     f"{err.status} {err.title}"])
    return render(req, result)


def render(req, result: dict) -> Response:
    status = "400 Bad Request" if result["errors"] else "200 OK"
    body = {"Number Deleted": result["deleted"], "Number Not Found": result["not_found"],
            "Response Body": "", "Response Status": status, "Errors": result["errors"]}
    accept = req.headers.get("accept", "")
    if "application/json" in accept:
        return Response(json.dumps(body), 200, media_type="application/json")
    if "xml" in accept:
        errs = "".join(f"<object><name>{escape(n)}</name><status>{escape(s)}</status>"
                       f"</object>" for n, s in result["errors"])
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<delete>'
               f"<number_deleted>{result['deleted']}</number_deleted>"
               f"<number_not_found>{result['not_found']}</number_not_found>"
               f"<response_body></response_body><response_status>{status}"
               f"</response_status><errors>{errs}</errors></delete>")
        return Response(xml, 200, media_type="application/xml")
    lines = [f"Number Deleted: {result['deleted']}",
             f"Number Not Found: {result['not_found']}", "Response Body: ",
             f"Response Status: {status}", "Errors:"]
    lines += [f"{n}, {s}" for n, s in result["errors"]]
    return Response("\n".join(lines) + "\n", 200, media_type="text/plain")
