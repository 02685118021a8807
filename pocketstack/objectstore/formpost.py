"""Form POST: browsers upload objects straight into a container with a signed form.

The form carries ``redirect``, ``max_file_size``, ``max_file_count``,
``expires`` and ``signature`` = HMAC(key, "path\\nredirect\\nmax_file_size\\n
max_file_count\\nexpires") with a Temp-URL key of the account or container.
Each file becomes the object ``<path prefix><filename>``.
"""

from __future__ import annotations

import hmac
import time
import urllib.parse

from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.responses import RedirectResponse, Response

from pocketstack.common import errors
from pocketstack.objectstore import tempurl


def _fail(message: str, redirect: str, status: int = 400) -> Response:
    if redirect:
        return _redirect(redirect, status, message)
    return Response(f"<html><h1>{status}</h1><p>FormPost: {message}</p></html>", status,
                    media_type="text/html; charset=UTF-8")


def _redirect(url: str, status: int, message: str) -> Response:
    sep = "&" if "?" in url else "?"
    query = urllib.parse.urlencode({"status": status, "message": message})
    return RedirectResponse(f"{url}{sep}{query}", status_code=303)


async def handle(req, store, account: str, container: str, obj: str, opts) -> Response:
    try:
        form = await req.raw.form(max_files=1000, max_fields=1000)
    except (HTTPException, MultiPartException) as exc:
        raise errors.BadRequest(f"FormPost: {getattr(exc, 'detail', None) or exc}") from None
    try:
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        files = [v for _k, v in form.multi_items() if not isinstance(v, str)]
        redirect = fields.get("redirect", "")
        try:
            max_file_size = int(fields.get("max_file_size", ""))
            max_file_count = int(fields.get("max_file_count", ""))
            expires = int(fields.get("expires", ""))
        except ValueError:
            return _fail("Invalid form fields", redirect, 400)
        if expires < time.time():
            raise errors.Unauthorized("FormPost: Form Expired")
        sig = fields.get("signature", "")
        try:
            algo, raw = tempurl._signature(sig, opts.tempurl_digests)
        except errors.Unauthorized:
            raise errors.Unauthorized("FormPost: Invalid Signature") from None
        ok = False
        for key in tempurl.keys(store, account, container):
            for path in tempurl.signed_paths(req.raw.url.path):
                body = f"{path}\n{redirect}\n{max_file_size}\n{max_file_count}\n{expires}"
                mac = hmac.new(key.encode(), body.encode(), tempurl.DIGESTS[algo]).digest()
                ok = ok or hmac.compare_digest(mac, raw)
        if not ok:
            raise errors.Unauthorized("FormPost: Invalid Signature")
        files = [f for f in files if f.filename]
        if len(files) > max_file_count:
            return _fail("max_file_count exceeded", redirect)
        headers = {}
        if fields.get("x_delete_at"):
            headers["X-Delete-At"] = fields["x_delete_at"]
        elif fields.get("x_delete_after"):
            try:
                headers["X-Delete-At"] = str(int(time.time()) + int(fields["x_delete_after"]))
            except ValueError:
                return _fail("x_delete_after not an integer", redirect)
        for upload in files:
            if upload.size is not None and upload.size > max_file_size:
                return _fail("max_file_size exceeded", redirect)
            name = obj + upload.filename
            ctype = (upload.content_type if fields.get("content-type") is None
                     else fields["content-type"])
            try:
                await store.put_object(account, container, name, upload,
                                       content_type=ctype or None, headers=headers)
            except errors.ApiError as err:
                return _fail(err.message, redirect, err.status)
        if redirect:
            return _redirect(redirect, 201, "")
        return Response("<html><h1>201 Created</h1><p></p></html>", 201,
                        media_type="text/html; charset=UTF-8")
    finally:
        await form.close()
