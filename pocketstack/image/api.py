"""Image v2 API routes (as the OpenStack Image API reference describes them)."""

from __future__ import annotations

import os
import re
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from pocketstack.common import bodystream, errors
from pocketstack.common.http import Api, JSONResponse, Request, dumps
from pocketstack.common.validation import validate
from pocketstack.image import core, schemas

VERSIONS = [f"v2.{n}" for n in range(16, -1, -1)]
PATCH_TYPES = {"application/openstack-images-v2.0-json-patch": 4,
               "application/openstack-images-v2.1-json-patch": 10}
OPERATIONS = ("add", "remove", "replace")
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def image_error_body(err: errors.ApiError) -> Response:
    """Glance's error shape (webob's JSON fault)."""
    return JSONResponse({"code": f"{err.status} {err.title}", "title": err.title,
                         "message": err.message})


def build(service) -> Api:
    images: core.ImageManager = service.manager
    identity = service.cloud.services.get("identity")
    api = Api(error_body=image_error_body,
              authenticate=identity.validator if identity is not None else None,
              max_body_size=service.conf.max_request_body_size)

    # -- version discovery ---------------------------------------------------------

    def version_list(req: Request) -> JSONResponse:
        href = req.base_url + "/v2/"
        values = [{"id": v, "status": "CURRENT" if i == 0 else "SUPPORTED",
                   "links": [{"rel": "self", "href": href}]} for i, v in enumerate(VERSIONS)]
        return JSONResponse({"versions": values}, status_code=300)

    for path in ("/", "/versions"):
        api.route(path, auth=False)(version_list)

    @api.route("/v2", auth=False)
    def version_v2(req):
        return JSONResponse({"versions": [
            {"id": VERSIONS[0], "status": "CURRENT",
             "links": [{"rel": "self", "href": req.base_url + "/v2/"}]}]}, status_code=300)

    api.route("/v2/", auth=False)(version_v2)

    # -- schemas and info -----------------------------------------------------------

    for name, doc in (("image", schemas.IMAGE), ("images", schemas.IMAGES),
                      ("member", schemas.MEMBER), ("members", schemas.MEMBERS)):
        api.route(f"/v2/schemas/{name}")(lambda req, doc=doc: doc)

    @api.route("/v2/info/import")
    def info_import(req):
        return {"import-methods": {"description": "Import methods available.",
                                   "type": "array",
                                   "value": list(service.conf.enabled_import_methods)}}

    @api.route("/v2/info/stores")
    def info_stores(req):
        store = images.store
        return {"stores": [{"id": store.name, "description": store.description,
                            "default": True}]}

    @api.route("/v2/info/usage")
    def info_usage(req):
        return {"usage": images.usage(req.context)}

    # -- images ---------------------------------------------------------------------

    @api.route("/v2/images", "POST", status=201)
    def create(req):
        image = images.create(req.context, req.json())
        headers = {"Location": req.base_url + image["self"]}
        methods = service.conf.enabled_import_methods
        if methods:
            headers["OpenStack-image-import-methods"] = ",".join(methods)
        return JSONResponse(image, status_code=201, headers=headers)

    @api.route("/v2/images")
    def index(req):
        page, marker = images.list_rendered(req.context, req.query)
        params = [(k, v) for k, v in req.query.multi_items() if k != "marker"]
        links = {"first": "/v2/images", "schema": "/v2/schemas/images"}
        if params:
            links["first"] = "/v2/images?" + _urlencode(params)
        if marker is not None:
            links["next"] = "/v2/images?" + _urlencode([*params, ("marker", marker)])
        # The images are kept rendered: splice them in rather than re-encode them.
        body = '{"images":[' + ",".join(page) + "]," + dumps(links).decode()[1:]
        return Response(body.encode(), media_type="application/json")

    @api.route("/v2/images/{image_id}")
    def show(req):
        return images.get(req.context, req.path_params["image_id"])

    @api.route("/v2/images/{image_id}", "PATCH")
    def update(req):
        content_type = req.headers.get("content-type", "").split(";")[0].strip()
        if content_type not in PATCH_TYPES:
            allowed = ", ".join(sorted(PATCH_TYPES))
            raise errors.UnsupportedMediaType(
                f"Image PATCH expects Content-Type one of: {allowed}",
                headers={"Accept-Patch": allowed})
        changes = parse_patch(req.json(), PATCH_TYPES[content_type])
        return images.update(req.context, req.path_params["image_id"], changes)

    @api.route("/v2/images/{image_id}", "DELETE", status=204)
    def delete(req):
        images.delete(req.context, req.path_params["image_id"])

    @api.route("/v2/images/{image_id}/actions/deactivate", "POST", status=204)
    def deactivate(req):
        images.deactivate(req.context, req.path_params["image_id"])

    @api.route("/v2/images/{image_id}/actions/reactivate", "POST", status=204)
    def reactivate(req):
        images.reactivate(req.context, req.path_params["image_id"])

    @api.route("/v2/images/{image_id}/tasks")
    def tasks(req):
        images.get(req.context, req.path_params["image_id"])
        return {"tasks": []}

    # -- tags -----------------------------------------------------------------------

    @api.route("/v2/images/{image_id}/tags/{tag}", "PUT", status=204)
    def add_tag(req):
        images.add_tag(req.context, req.path_params["image_id"], req.path_params["tag"])

    @api.route("/v2/images/{image_id}/tags/{tag}", "DELETE", status=204)
    def delete_tag(req):
        images.delete_tag(req.context, req.path_params["image_id"], req.path_params["tag"])

    # -- members --------------------------------------------------------------------

    @api.route("/v2/images/{image_id}/members")
    def list_members(req):
        return {"members": images.list_members(req.context, req.path_params["image_id"]),
                "schema": "/v2/schemas/members"}

    @api.route("/v2/images/{image_id}/members", "POST")
    def add_member(req):
        return images.add_member(req.context, req.path_params["image_id"], req.json())

    @api.route("/v2/images/{image_id}/members/{member_id}")
    def get_member(req):
        return images.get_member(req.context, req.path_params["image_id"],
                                 req.path_params["member_id"])

    @api.route("/v2/images/{image_id}/members/{member_id}", "PUT")
    def update_member(req):
        return images.update_member(req.context, req.path_params["image_id"],
                                    req.path_params["member_id"], req.json())

    @api.route("/v2/images/{image_id}/members/{member_id}", "DELETE", status=204)
    def delete_member(req):
        images.delete_member(req.context, req.path_params["image_id"],
                             req.path_params["member_id"])

    # -- data -----------------------------------------------------------------------

    def octet_stream(req: Request) -> int | None:
        content_type = req.headers.get("content-type", "").split(";")[0].strip()
        if content_type != "application/octet-stream":
            raise errors.UnsupportedMediaType(
                f"Content-Type must be application/octet-stream, not '{content_type}'.")
        declared = req.headers.get("content-length")
        return int(declared) if declared and declared.isdigit() else None

    async def receive(req: Request, method) -> Response:
        size = octet_stream(req)
        try:
            await method(req.context, req.path_params["image_id"],
                         bodystream.RequestBody(req.raw, size), size)
        except ClientDisconnect:
            raise errors.BadRequest("The client went away before the upload "
                                    "completed.") from None
        return Response(status_code=204)

    @api.route("/v2/images/{image_id}/file", "PUT", raw_body=True)
    async def upload(req):
        return await receive(req, images.upload)

    @api.route("/v2/images/{image_id}/stage", "PUT", raw_body=True)
    async def stage(req):
        return await receive(req, images.stage)

    @api.route("/v2/images/{image_id}/import", "POST", status=202)
    async def import_image(req):
        image_id = req.path_params["image_id"]
        job = await run_in_threadpool(images.begin_import, req.context, image_id, req.json())
        images.start_import(image_id, job)
        return Response(status_code=202)

    @api.route("/v2/images/{image_id}/file")
    async def download(req):
        image, location = await run_in_threadpool(images.readable, req.context,
                                                  req.path_params["image_id"])
        size = image["size"]
        if location is None or size is None:
            return Response(status_code=204)
        start, end = 0, size  # [start, end)
        status = 200
        header = req.headers.get("range")
        if header:
            start, end = parse_range(header, size)
            status = 206
        headers = {"Content-Length": str(end - start)}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        elif image["checksum"]:
            headers["Content-MD5"] = image["checksum"]
        path = images.store.path(location)
        if path is not None:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise errors.NotFound("The image's data could not be found.") from None
            return bodystream.FileResponse(fd, start, end - start, status_code=status,
                                           headers=headers,
                                           media_type="application/octet-stream",
                                           on_close=lambda: os.close(fd))
        return StreamingResponse(images.store.iterate(location, start, end - start),
                                 status_code=status, headers=headers,
                                 media_type="application/octet-stream")

    return api


def parse_range(header: str, size: int) -> tuple[int, int]:
    match = RANGE.match(header.strip())
    unsatisfiable = errors.RangeNotSatisfiable(
        f"Requested range '{header}' is not satisfiable for an image of {size} bytes.",
        headers={"Content-Range": f"bytes */{size}"})
    if not match or match.group(1) == match.group(2) == "":
        raise unsatisfiable
    first, last = match.group(1), match.group(2)
    if first == "":
        start, end = max(0, size - int(last)), size
    else:
        start = int(first)
        end = size if last == "" else min(size, int(last) + 1)
    if start >= size or start >= end:
        raise unsatisfiable
    return start, end


def parse_patch(body, draft: int) -> list[dict]:
    """Glance's JSON-patch: a list of add/remove/replace on one-level paths."""
    if not isinstance(body, list):
        raise errors.BadRequest("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in body:
        if not isinstance(raw, dict):
            raise errors.BadRequest("Operations must be JSON objects.")
        if draft == 10:
            op = raw.get("op")
            if op not in OPERATIONS:
                raise errors.BadRequest(
                    f"Invalid operation: `{op}`. It must be one of the following: "
                    f"{', '.join(OPERATIONS)}." if op is not None else
                    "Unable to find `op` in JSON Schema change. It must be one of the "
                    f"following: {', '.join(OPERATIONS)}.")
            if "path" not in raw:
                raise errors.BadRequest("Unable to find 'path' in JSON Schema change")
            pointer = raw["path"]
        else:
            ops = [k for k in OPERATIONS if k in raw]
            if len(ops) != 1:
                raise errors.BadRequest('Operation objects must contain exactly one member '
                                        'named "add", "remove", or "replace".')
            op = ops[0]
            pointer = raw[op]
        path = decode_pointer(pointer)
        if len(path) != 1:
            raise errors.BadRequest(f"Invalid JSON pointer for this resource: "
                                    f"'/{'/'.join(path)}'")
        change = {"op": op, "path": path}
        root = path[0]
        if root in core.READ_ONLY:
            raise errors.Forbidden(f"Attribute '{root}' is read-only.")
        if root in core.RESERVED or root.startswith(core.RESERVED_NS):
            raise errors.Forbidden(f"Attribute '{root}' is reserved.")
        if op != "remove":
            if "value" not in raw:
                raise errors.BadRequest(f'Operation "{op}" requires a member named "value".')
            change["value"] = raw["value"]
            if root != "locations":
                validate(schemas.PARTIAL, {root: raw["value"]})
        changes.append(change)
    return changes


def decode_pointer(pointer) -> list[str]:
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        raise errors.BadRequest(f'Pointer `{pointer}` does not start with "/".')
    if re.search(r"/\s*?/", pointer[1:]):
        raise errors.BadRequest(f'Pointer `{pointer}` contains adjacent "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        raise errors.BadRequest(f'Pointer `{pointer}` end with "/".')
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise errors.BadRequest(f'Pointer `{pointer}` contains "~" not part of a recognized '
                                "escape sequence.")
    return [part.replace("~1", "/").replace("~0", "~").strip()
            for part in pointer[1:].split("/")]


def _urlencode(params) -> str:
    return urlencode(params)
