"""Object Storage v1 (Swift) API: accounts, containers, objects over REST."""

from __future__ import annotations

import email.utils
import json
import math
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape, quoteattr

from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from pocketstack.common import bodystream, errors
from pocketstack.common.http import Api, Request
from pocketstack.objectstore import acl, bulk, formpost, tempurl
from pocketstack.objectstore.core import (
    CONTAINER_HEADERS,
    DIRECT_READ_MIN,
    OBJECT_HEADERS,
    SMALL,
    ObjectInfo,
    ObjectStore,
    _iso,
    check_container_name,
    check_meta_limits,
    check_object_name,
    guess_type,
    header_text,
    quote_etag,
)

HTML = "text/html; charset=UTF-8"
MANIFEST_JSON = "application/json; charset=utf-8"


def error_body(err: errors.ApiError) -> Response:
    """Swift's error bodies are short HTML pages."""
    if err.status == 304:
        return Response(b"", headers={"Content-Length": "0"})
    message = escape(err.message)
    title = err.title if err.status < 500 or err.status == 503 else "Internal Error"
    return Response(f"<html><h1>{title}</h1><p>{message}</p></html>", media_type=HTML)


def http_date(ts: float) -> str:
    return email.utils.formatdate(math.ceil(ts), usegmt=True)


def parse_http_date(value: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed else None


def _title(key: str) -> str:
    return "-".join(p.capitalize() for p in key.split("-"))


def _int_header(value: str | None, name: str, minimum: int = 0) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise errors.BadRequest(f"Invalid {name}: {value!r}") from None
    if number < minimum:
        raise errors.BadRequest(f"Invalid {name}: {value!r}")
    return number


def listing_format(req: Request) -> str:
    fmt = req.query.get("format", "").lower()
    if fmt in ("json", "xml", "plain"):
        return fmt
    accept = req.headers.get("accept", "")
    if "application/json" in accept:
        return "json"
    if "application/xml" in accept or "text/xml" in accept:
        return "xml"
    return "plain"


def build(service) -> Api:
    store: ObjectStore = service.store
    opts = service.conf.objectstore
    api = Api(error_body=error_body, authenticate=service.validator, after=_after,
              max_body_size=opts.max_manifest_size)

    # -- /info ------------------------------------------------------------------

    @api.route("/info", ("GET", "HEAD"), auth=False)
    def info(req: Request):
        return Response(json.dumps(service.capabilities()), media_type=MANIFEST_JSON)

    @api.route("/v1/{rest:path}", ("GET", "HEAD", "PUT", "POST", "DELETE", "COPY", "OPTIONS"),
               auth="optional", raw_body=True)
    async def dispatch(req: Request):
        rest = req.path_params["rest"]
        account, _, tail = rest.partition("/")
        container, _, obj = tail.partition("/")
        if not account.startswith("AUTH_") or not account[5:]:
            raise errors.NotFound()
        method = req.method
        if method == "OPTIONS":
            return Response(status_code=200, headers={
                "Allow": "GET, HEAD, PUT, POST, DELETE, COPY, OPTIONS"})
        if not container:
            handler = ACCOUNT.get(method)
        elif not obj:
            handler = CONTAINER.get(method)
        else:
            handler = OBJECT.get(method)
        if handler is None:
            raise errors.MethodNotAllowed(f"The method {method} is not allowed for this "
                                          f"resource.")
        try:
            return await handler(req, account, container, obj)
        except ClientDisconnect:
            return Response(status_code=499)

    # -- authorisation ------------------------------------------------------------

    def role_of(req: Request, account: str) -> str | None:
        return acl.account_role(req.context, account, opts)

    def deny(req: Request):
        if req.context is None:
            return service.validator.unauthorized()
        return errors.Forbidden("Access was denied to this resource.")

    def require_owner(req: Request, account: str) -> None:
        if role_of(req, account) != "owner":
            raise deny(req)

    def can_read_container(req: Request, account: str, cinfo, listing: bool) -> bool:
        if role_of(req, account) in ("owner", "reader"):
            return True
        return cinfo is not None and acl.allows_read(cinfo.get("X-Container-Read"),
                                                     req.context, listing=listing,
                                                     referer=req.headers.get("referer"))

    def can_write_container(req: Request, account: str, cinfo) -> bool:
        if role_of(req, account) == "owner":
            return True
        return cinfo is not None and acl.allows_write(cinfo.get("X-Container-Write"),
                                                      req.context)

    # -- accounts -----------------------------------------------------------------

    def account_headers(account: str) -> dict[str, str]:
        containers, objects, used = store.account_stats(account)
        ts = store.account_timestamp(account) or "0000000000.00000"
        headers = {"X-Account-Container-Count": str(containers),
                   "X-Account-Object-Count": str(objects),
                   "X-Account-Bytes-Used": str(used), "X-Timestamp": ts,
                   "X-Put-Timestamp": ts, "Accept-Ranges": "bytes"}
        for key, value in store.account_meta(account).items():
            headers[key] = value
        return headers

    async def account_get(req, account, _c, _o):
        if "bulk-delete" in req.query and req.method == "DELETE":
            return await bulk_delete(req, account)
        if role_of(req, account) not in ("owner", "reader"):
            raise deny(req)
        headers = await _thread(account_headers, account)
        if req.method == "HEAD":
            return _empty(204, headers, "text/plain; charset=utf-8")
        params = listing_params(req, opts.account_listing_limit)
        rows = await _thread(store.list_containers, account, **params)
        fmt = listing_format(req)
        items = []
        for row in rows:
            if isinstance(row, dict):
                items.append(row)
            else:
                items.append({"name": row.name, "count": row.object_count,
                              "bytes": row.bytes_used,
                              "last_modified": _iso(row.put_timestamp)})
        return render_listing(fmt, items, "account", account, headers,
                              ("name", "count", "bytes", "last_modified"))

    async def account_post(req, account, _c, _o):
        if "bulk-delete" in req.query:
            return await bulk_delete(req, account)
        require_owner(req, account)
        set_meta, remove = collect_meta(req, "X-Account-Meta-", ())
        quota_keys = {"X-Account-Meta-Quota-Bytes"}
        if quota_keys & (set(set_meta) | set(remove)) and not acl.is_reseller(req.context,
                                                                               opts):
            raise errors.Forbidden("Only a reseller admin may set account quotas.")
        if "X-Account-Meta-Quota-Bytes" in set_meta and set_meta["X-Account-Meta-Quota-Bytes"]:
            _int_header(set_meta["X-Account-Meta-Quota-Bytes"], "quota")
        await _thread(store.update_account, account, set_meta, remove)
        return _empty(204, {})

    async def account_put(req, account, _c, _o):
        raise errors.MethodNotAllowed("Account management is not allowed.")

    async def account_delete(req, account, _c, _o):
        if "bulk-delete" in req.query:
            return await bulk_delete(req, account)
        raise errors.MethodNotAllowed("Account management is not allowed.")

    async def bulk_delete(req: Request, account: str):
        raw = await read_limited(req, opts.max_deletes_per_request * 1400)
        return await bulk.delete(req, store, account, raw, opts,
                                 can_write=lambda c: can_write_container(
                                     req, account, store.get_container(account, c)),
                                 is_owner=role_of(req, account) == "owner")

    ACCOUNT = {"GET": account_get, "HEAD": account_get, "POST": account_post,
               "PUT": account_put, "DELETE": account_delete}

    # -- containers ---------------------------------------------------------------

    def container_headers(cinfo) -> dict[str, str]:
        count, used = store.container_stats(cinfo.account, cinfo.name)
        headers = {"X-Container-Object-Count": str(count), "X-Container-Bytes-Used": str(used),
                   "X-Timestamp": cinfo.timestamp, "X-Put-Timestamp": cinfo.put_timestamp,
                   "Last-Modified": http_date(float(cinfo.put_timestamp)),
                   "X-Storage-Policy": "Policy-0", "Accept-Ranges": "bytes"}
        headers.update(cinfo.meta)
        for key in ("X-Versions-Location", "X-History-Location"):
            if key in headers:
                headers[key] = urllib.parse.quote(headers[key])
        return headers

    async def container_get(req, account, container, _o):
        cinfo = store.get_container(account, container)
        if not can_read_container(req, account, cinfo, listing=True):
            raise deny(req)
        if cinfo is None:
            raise errors.NotFound()
        headers = await _thread(container_headers, cinfo)
        if role_of(req, account) != "owner":  # ACLs and sync settings are the owner's
            for key in ("X-Container-Read", "X-Container-Write"):
                headers.pop(key, None)
        if req.method == "HEAD":
            return _empty(204, headers, "text/plain; charset=utf-8")
        params = listing_params(req, opts.container_listing_limit)
        path = req.query.get("path")
        if path is not None:
            params["prefix"] = path.rstrip("/") + "/" if path else ""
            params["delimiter"] = "/"
        rows = await _thread(store.list_objects, account, container, **params)
        items = []
        for row in rows:
            if isinstance(row, dict):
                items.append(row)
            else:
                items.append({"hash": row.etag, "last_modified": _iso(row.timestamp),
                              "bytes": row.size, "name": row.name,
                              "content_type": row.content_type})
        return render_listing(listing_format(req), items, "container", container, headers,
                              ("name", "hash", "bytes", "content_type", "last_modified"))

    def container_meta_from(req: Request) -> tuple[dict[str, str], list[str]]:
        set_meta, remove = collect_meta(req, "X-Container-Meta-", CONTAINER_HEADERS)
        for key in ("X-Container-Meta-Quota-Bytes", "X-Container-Meta-Quota-Count"):
            if set_meta.get(key):
                _int_header(set_meta[key], key)
        if set_meta.get("X-Versions-Location") and set_meta.get("X-History-Location"):
            raise errors.BadRequest("Only one of X-Versions-Location or X-History-Location "
                                    "may be set.")
        for key in ("X-Versions-Location", "X-History-Location"):
            if set_meta.get(key):
                where = header_text(set_meta[key])
                check_container_name(where)
                set_meta[key] = where
                other = ("X-History-Location" if key == "X-Versions-Location"
                         else "X-Versions-Location")
                remove.append(other)
        for key in ("X-Container-Read", "X-Container-Write"):
            if set_meta.get(key):
                set_meta[key] = acl.clean(set_meta[key], write=key.endswith("Write"))
        return set_meta, remove

    async def container_put(req, account, container, _o):
        require_owner(req, account)
        check_container_name(container)
        set_meta, remove = container_meta_from(req)
        created = await _thread(store.create_container, account, container, set_meta, remove)
        return _empty(201 if created else 202, {})

    async def container_post(req, account, container, obj):
        if _is_form(req):
            return await formpost.handle(req, store, account, container, obj, opts)
        require_owner(req, account)
        set_meta, remove = container_meta_from(req)
        await _thread(store.update_container, account, container, set_meta, remove)
        return _empty(204, {})

    async def container_delete(req, account, container, _o):
        require_owner(req, account)
        await _thread(store.delete_container, account, container)
        return _empty(204, {})

    CONTAINER = {"GET": container_get, "HEAD": container_get, "PUT": container_put,
                 "POST": container_post, "DELETE": container_delete}

    # -- objects ------------------------------------------------------------------

    def object_access(req: Request, account: str, container: str, obj: str,
                      write: bool):
        """The container (None if missing) once the caller may do this."""
        cinfo = store.get_container(account, container)
        if "temp_url_sig" in req.query:
            tempurl.check(req, store, account, container, obj, opts)
            return cinfo
        ok = (can_write_container(req, account, cinfo) if write
              else can_read_container(req, account, cinfo, listing=False))
        if not ok:
            raise deny(req)
        return cinfo

    def object_headers(meta, info: ObjectInfo) -> dict[str, str]:
        headers = {"Content-Type": info.content_type, "Etag": info.etag,
                   "Last-Modified": http_date(info.last_modified),
                   "X-Timestamp": info.timestamp, "Accept-Ranges": "bytes"}
        headers.update(meta.headers)
        if info.slo or info.dlo:
            headers["Etag"] = quote_etag(info.etag)
        return headers

    async def object_get(req, account, container, obj):
        object_access(req, account, container, obj, write=False)
        handle = store.open_object(account, container, obj)
        if handle is None:
            raise errors.NotFound()
        try:
            meta = handle.meta
            info = ObjectInfo.of(meta)
            mm = req.query.get("multipart-manifest")
            if mm == "get" and info.slo:
                return await slo_manifest_response(req, handle, info)
            if mm == "get" and info.dlo:
                info.dlo = None
                parts = [_whole(handle)]
            elif not (info.slo or info.dlo):
                parts = [_whole(handle)]
            else:
                parts = await _thread(store.parts_of, handle)
                if info.dlo:
                    info.size = sum(p.end - p.start for p in parts)
                    info.etag = _dlo_etag(parts)
            headers = object_headers(meta, info)
            if "temp_url_sig" in req.query:
                tempurl.disposition(req, obj, headers)
                for key in [k for k in headers if k.startswith("X-Object-Meta-")
                            and not k.startswith("X-Object-Meta-Public-")]:
                    del headers[key]  # not for the URL's holder (outgoing_remove_headers)
            conditional(req, info, headers)
            ranges = parse_ranges(req.headers.get("range"), info.size)
            if req.method == "HEAD":
                headers["Content-Length"] = str(info.size)
                return _empty(200, headers, info.content_type)
            plain = len(parts) == 1 and parts[0].handle is handle
            if ranges is None:
                if plain and info.size <= SMALL:
                    body = handle.read(0, info.size)
                    handle.close()
                    return Response(body, 200, headers=headers, media_type=info.content_type)
                if plain:
                    return file_response(handle, 0, info.size, 200, headers,
                                         store.disk.direct_io)
                headers["Content-Length"] = str(info.size)
                return stream_response(store.stream(parts), 200, headers, handle)
            if len(ranges) == 1:
                start, end = ranges[0]
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
                if plain and end - start > SMALL:
                    return file_response(handle, start, end - start, 206, headers,
                                         store.disk.direct_io)
                headers["Content-Length"] = str(end - start)
                return stream_response(store.stream(parts, start, end), 206, headers, handle)
            boundary = uuid.uuid4().hex
            heads = [(f"--{boundary}\r\nContent-Type: {info.content_type}\r\n"
                      f"Content-Range: bytes {s}-{e - 1}/{info.size}\r\n\r\n").encode()
                     for s, e in ranges]
            tail = f"\r\n--{boundary}--".encode()
            length = sum(len(h) + (e - s) for h, (s, e) in zip(heads, ranges, strict=True)) \
                + 2 * (len(ranges) - 1) + len(tail)

            async def multipart():
                for i, ((s, e), head) in enumerate(zip(ranges, heads, strict=True)):
                    yield (b"\r\n" if i else b"") + head
                    async for chunk in store.stream(parts, s, e):
                        yield chunk
                yield tail

            headers["Content-Type"] = f"multipart/byteranges;boundary={boundary}"
            headers["Content-Length"] = str(length)
            return stream_response(multipart(), 206, headers, handle)
        except BaseException:
            handle.close()
            raise

    async def slo_manifest_response(req: Request, handle, info: ObjectInfo):
        manifest = store.slo_manifest(handle)
        handle.close()
        if req.query.get("format") == "raw":
            manifest = [{"path": s["name"], "etag": s["hash"], "size_bytes": s["bytes"],
                         **({"range": s["range"]} if s.get("range") else {})}
                        for s in manifest]
        body = json.dumps(manifest).encode()
        headers = {"X-Static-Large-Object": "True", "Etag": info.etag,
                   "X-Timestamp": info.timestamp,
                   "Last-Modified": http_date(info.last_modified)}
        if req.method == "HEAD":
            headers["Content-Length"] = str(len(body))
            return _empty(200, headers, MANIFEST_JSON)
        return Response(body, 200, headers=headers, media_type=MANIFEST_JSON)

    def object_meta_from(req: Request, *, put: bool) -> dict[str, str]:
        headers: dict[str, str] = {}
        for key, value in req.headers.items():
            if key.startswith("x-object-meta-"):
                if value != "" or put:
                    headers[_title(key)] = value
        for name in OBJECT_HEADERS:
            value = req.headers.get(name)
            if value is not None and value != "":
                headers[name] = value
        if "X-Object-Manifest" in headers:
            cont, sep, _prefix = header_text(headers["X-Object-Manifest"]).partition("/")
            if not cont or not sep:
                raise errors.BadRequest("X-Object-Manifest must be in the format "
                                        "container/prefix")
        after = req.headers.get("x-delete-after")
        if after is not None:
            seconds = _int_header(after, "X-Delete-After")
            headers["X-Delete-At"] = str(int(time.time()) + seconds)
        if "X-Delete-At" in headers:
            at = _int_header(headers["X-Delete-At"], "X-Delete-At")
            if at <= time.time():
                raise errors.BadRequest("X-Delete-At in past")
            headers["X-Delete-At"] = str(at)
        check_meta_limits(opts, headers, "X-Object-Meta-")
        return {k: v for k, v in headers.items() if v != "" or not k.startswith("X-Object-M")}

    def content_type_of(req: Request, obj: str) -> str | None:
        ctype = req.headers.get("content-type")
        detect = req.headers.get("x-detect-content-type", "").lower() in ("true", "1", "yes")
        if detect or not ctype:
            return guess_type(obj)
        if len(ctype) > 256:
            raise errors.BadRequest("Content-Type too long.")
        return ctype

    async def object_put(req, account, container, obj):
        check_container_name(container)
        check_object_name(obj)
        cinfo = object_access(req, account, container, obj, write=True)
        if cinfo is None:
            raise errors.NotFound()
        headers = object_meta_from(req, put=True)
        copy_from = req.headers.get("x-copy-from")
        if copy_from is not None:
            src_account = req.headers.get("x-copy-from-account") or account
            return await do_copy(req, (src_account, *split_path(copy_from)),
                                 (account, container, obj), headers)
        length = req.headers.get("content-length")
        chunked = "chunked" in req.headers.get("transfer-encoding", "").lower()
        if length is None and not chunked:
            raise errors.LengthRequired("Missing Content-Length header.")
        content_length = None if chunked else _int_header(length, "Content-Length")
        if content_length is not None and content_length > opts.max_file_size:
            raise errors.RequestEntityTooLarge("Your request is too large.")
        if req.query.get("multipart-manifest") == "put":
            raw = await read_limited(req, opts.max_manifest_size)
            try:
                segments = json.loads(raw)
            except ValueError:
                raise errors.BadRequest("Manifest must be valid JSON.") from None
            info = await store.put_slo(account, container, obj, segments,
                                       content_type=content_type_of(req, obj),
                                       headers=headers, etag=req.headers.get("etag"))
            return _empty(201, {"Etag": quote_etag(info.etag),
                                "Last-Modified": http_date(info.last_modified)}, HTML)
        inm = req.headers.get("if-none-match")
        if inm is not None and inm.strip() != "*":
            raise errors.BadRequest("If-None-Match only supports *")
        body = bodystream.RequestBody(req.raw, content_length)
        info = await store.put_object(account, container, obj, body,
                                      content_type=content_type_of(req, obj),
                                      headers=headers, etag=req.headers.get("etag"),
                                      content_length=content_length,
                                      if_none_match=inm is not None)
        return _empty(201, {"Etag": info.etag, "Last-Modified": http_date(info.last_modified),
                            "X-Timestamp": info.timestamp}, HTML)

    def split_path(value: str) -> tuple[str, str]:
        value = header_text(value).lstrip("/")
        cont, _, name = value.partition("/")
        if not cont or not name:
            raise errors.PreconditionFailed("Bad header value: must be <container>/<object>")
        return cont, name

    async def do_copy(req: Request, src: tuple[str, str, str], dst: tuple[str, str, str],
                      headers: dict[str, str]):
        scinfo = store.get_container(src[0], src[1])
        if not can_read_container(req, src[0], scinfo, listing=False):
            raise deny(req)
        fresh = req.headers.get("x-fresh-metadata", "").lower() in ("true", "1", "yes")
        ctype = req.headers.get("content-type") if req.method == "COPY" or \
            req.headers.get("content-type") else None
        smeta = store.read_meta(*src)
        if smeta is None:
            raise errors.NotFound()
        info = await store.copy_object(src, dst, headers=headers, content_type=ctype,
                                       fresh=fresh,
                                       manifest=req.query.get("multipart-manifest") == "get")
        out = {"Etag": info.etag, "Last-Modified": http_date(info.last_modified),
               "X-Copied-From": urllib.parse.quote(f"{src[1]}/{src[2]}"),
               "X-Copied-From-Last-Modified": http_date(float(smeta.timestamp)),
               "X-Timestamp": info.timestamp}
        if src[0] != dst[0]:
            out["X-Copied-From-Account"] = src[0]
        return _empty(201, out, HTML)

    async def object_copy(req, account, container, obj):
        dest = req.headers.get("destination")
        if not dest:
            raise errors.PreconditionFailed("Destination header required")
        dst_account = req.headers.get("destination-account") or account
        dcont, dname = split_path(dest)
        check_container_name(dcont)
        check_object_name(dname)
        dcinfo = store.get_container(dst_account, dcont)
        if not can_write_container(req, dst_account, dcinfo):
            raise deny(req)
        if dcinfo is None:
            raise errors.NotFound()
        headers = object_meta_from(req, put=True)
        return await do_copy(req, (account, container, obj), (dst_account, dcont, dname),
                             headers)

    async def object_post(req, account, container, obj):
        if _is_form(req):
            return await formpost.handle(req, store, account, container, obj, opts)
        object_access(req, account, container, obj, write=True)
        headers = object_meta_from(req, put=False)
        ctype = req.headers.get("content-type")
        await store.post_object(account, container, obj, headers, ctype)
        return _empty(202, {}, HTML)

    async def object_delete(req, account, container, obj):
        object_access(req, account, container, obj, write=True)
        if req.query.get("multipart-manifest") == "delete":
            result = await store.delete_slo(account, container, obj)
            return bulk.render(req, result)
        if not await store.delete_object(account, container, obj):
            raise errors.NotFound()
        return _empty(204, {}, HTML)

    OBJECT = {"GET": object_get, "HEAD": object_get, "PUT": object_put, "POST": object_post,
              "DELETE": object_delete, "COPY": object_copy}

    return api


# -- helpers --------------------------------------------------------------------

async def _thread(fn, *args, **kwargs):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args, **kwargs)


def _after(req: Request, response: Response) -> None:
    response.headers["X-Trans-Id"] = req.request_id


def _empty(status: int, headers: dict[str, str], media_type: str | None = None) -> Response:
    headers = dict(headers)
    headers.setdefault("Content-Length", "0")
    response = Response(b"", status, headers=headers)
    if media_type and "content-type" not in response.headers:
        response.headers["Content-Type"] = media_type
    return response


def _is_form(req: Request) -> bool:
    return req.headers.get("content-type", "").startswith("multipart/form-data") and \
        req.context is None


def _whole(handle):
    from pocketstack.objectstore.core import Part

    m = handle.meta
    return Part(m.account, m.container, m.name, 0, handle.size, handle=handle)


def _dlo_etag(parts) -> str:
    import hashlib

    md5 = hashlib.md5(usedforsecurity=False)
    for p in parts:
        md5.update((p.etag or "").encode())
    return md5.hexdigest()


async def read_limited(req: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in req.raw.stream():
        size += len(chunk)
        if size > limit:
            raise errors.RequestEntityTooLarge("Request body too large.")
        chunks.append(chunk)
    return b"".join(chunks)


def collect_meta(req: Request, prefix: str, extra: tuple[str, ...]):
    """Metadata set and removed by a POST/PUT: ``X-<Type>-Meta-*``, ``X-Remove-...``."""
    lp = prefix.lower()
    remove_prefix = "x-remove-" + lp[2:]
    set_meta: dict[str, str] = {}
    remove: list[str] = []
    extras = {e.lower(): e for e in extra}
    remove_extras = {"x-remove-" + e.lower()[2:]: e for e in extra}
    for key, value in req.headers.items():
        if key.startswith(lp):
            set_meta[_title(key).replace("Temp-Url", "Temp-URL")] = value.strip()
        elif key.startswith(remove_prefix):
            remove.append(prefix + _title(key[len(remove_prefix):]).replace("Temp-Url",
                                                                            "Temp-URL"))
        elif key in extras:
            set_meta[extras[key]] = value.strip()
        elif key in remove_extras:
            remove.append(remove_extras[key])
    return set_meta, remove


def listing_params(req: Request, max_limit: int) -> dict:
    q = req.query
    limit = q.get("limit")
    if limit is not None:
        try:
            limit_n = int(limit)
        except ValueError:
            raise errors.PreconditionFailed("Value of limit must be an integer") from None
        if limit_n > max_limit:
            raise errors.PreconditionFailed(f"Maximum limit is {max_limit}")
        if limit_n < 0:
            raise errors.PreconditionFailed("Value of limit must be a positive integer")
    else:
        limit_n = max_limit
    delimiter = q.get("delimiter", "")
    if len(delimiter) > 1:
        raise errors.PreconditionFailed("Bad delimiter")
    for key in ("prefix", "marker", "end_marker", "delimiter"):
        if "\x00" in q.get(key, ""):
            raise errors.PreconditionFailed(f"Bad {key}")
    reverse = q.get("reverse", "").lower() in ("true", "1", "yes", "on", "t", "y")
    return {"prefix": q.get("prefix", ""), "delimiter": delimiter,
            "marker": q.get("marker", ""), "end_marker": q.get("end_marker", ""),
            "reverse": reverse, "limit": limit_n}


def render_listing(fmt: str, items: list[dict], kind: str, name: str,
                   headers: dict[str, str], xml_fields: tuple[str, ...]) -> Response:
    if fmt == "json":
        return Response(json.dumps(items), 200, headers=headers,
                        media_type="application/json; charset=utf-8")
    if fmt == "xml":
        out = ['<?xml version="1.0" encoding="UTF-8"?>', f"<{kind} name={quoteattr(name)}>"]
        inner = "object" if kind == "container" else "container"
        for item in items:
            if "subdir" in item:
                out.append(f"<subdir name={quoteattr(item['subdir'])}><name>"
                           f"{escape(item['subdir'])}</name></subdir>")
                continue
            fields = "".join(f"<{f}>{escape(str(item[f]))}</{f}>" for f in xml_fields)
            out.append(f"<{inner}>{fields}</{inner}>")
        out.append(f"</{kind}>")
        return Response("\n".join(out).encode(), 200, headers=headers,
                        media_type="application/xml; charset=utf-8")
    if not items:
        return _empty(204, headers, "text/plain; charset=utf-8")
    body = "".join((i.get("subdir") or i["name"]) + "\n" for i in items)
    return Response(body.encode("utf-8", "surrogateescape"), 200, headers=headers,
                    media_type="text/plain; charset=utf-8")


def conditional(req: Request, info: ObjectInfo, headers: dict[str, str]) -> None:
    etag = info.etag

    def matches(header: str) -> bool:
        tags = [t.strip() for t in header.split(",")]
        return "*" in tags or any(t.strip('"') == etag for t in tags if t)

    keep = {k: v for k, v in headers.items() if k in ("Etag", "Last-Modified", "X-Timestamp")}
    if_match = req.headers.get("if-match")
    if if_match is not None and not matches(if_match):
        raise errors.PreconditionFailed(headers=keep)
    inm = req.headers.get("if-none-match")
    if inm is not None and matches(inm):
        raise NotModified(headers=keep)
    last = math.ceil(info.last_modified)
    ims = req.headers.get("if-modified-since")
    if ims and inm is None:
        since = parse_http_date(ims)
        if since is not None and last <= since:
            raise NotModified(headers=keep)
    ius = req.headers.get("if-unmodified-since")
    if ius and if_match is None:
        since = parse_http_date(ius)
        if since is not None and last > since:
            raise errors.PreconditionFailed(headers=keep)


class NotModified(errors.ApiError):
    status = 304
    title = "Not Modified"


def parse_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """Satisfiable [start, end) ranges; None for a full response; 416 when none fit."""
    if not header:
        return None
    header = header.strip()
    if not header.lower().startswith("bytes="):
        return None
    specs = header[6:].split(",")
    ranges: list[tuple[int, int]] = []
    for spec in specs:
        spec = spec.strip()
        first, sep, last = spec.partition("-")
        if not sep:
            return None
        try:
            if first == "":
                if last == "":
                    return None
                n = int(last)
                if n < 0:
                    return None
                if n == 0:
                    continue
                start, end = max(size - n, 0), size
            else:
                start = int(first)
                end = size if last == "" else int(last) + 1
                if last != "" and int(last) < start:
                    return None  # a syntactically bad range: ignore the header
                end = min(end, size)
        except ValueError:
            return None
        if start < 0:
            return None
        if start < size and start < end:
            ranges.append((start, end))
    if not ranges:
        raise errors.RangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    if len(ranges) > 100:
        return None
    return ranges


def file_response(handle, start: int, length: int, status: int,
                  headers: dict[str, str], direct_io: bool) -> Response:
    """Bytes of one stored object, sent by the kernel where the server allows.
    With ``[objectstore] direct_io``, big objects leave the page cache as they go
    out (as Swift drops them)."""
    return bodystream.FileResponse(handle.fd, start, length, status_code=status,
                                   headers=headers, media_type=headers.get("Content-Type"),
                                   on_close=handle.close,
                                   drop_cache=direct_io and length >= DIRECT_READ_MIN)


def stream_response(body, status: int, headers: dict[str, str], handle) -> Response:
    async def guarded():
        try:
            async for chunk in body:
                yield chunk
        finally:
            await body.aclose()  # finishes any read ahead before the file closes
            handle.close()

    return StreamingResponse(guarded(), status, headers=headers,
                             media_type=headers.get("Content-Type"))
