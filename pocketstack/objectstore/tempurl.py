"""TempURL: a signed, expiring URL to one object (or a prefix), no token needed.

The signature is HMAC(key, "METHOD\\nexpires\\npath") with a key from the
account's or the container's Temp-URL-Key(-2) metadata; sha1/sha256/sha512,
hex or "<digest>:<base64>". The path is the one the client signed: with or
without this cloud's /object-store prefix.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import time
import urllib.parse

from pocketstack.common import errors

DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
HEX_LENGTHS = {40: "sha1", 64: "sha256", 128: "sha512"}


def _expires(value: str | None) -> int:
    if not value:
        raise errors.Unauthorized("Temp URL invalid")
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        raise errors.Unauthorized("Temp URL invalid") from None


def _signature(sig: str, allowed: list[str]) -> tuple[str, bytes]:
    if ":" in sig:
        algo, _, b64 = sig.partition(":")
        try:
            raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        except (binascii.Error, ValueError):
            raise errors.Unauthorized("Temp URL invalid") from None
    else:
        algo = HEX_LENGTHS.get(len(sig), "")
        try:
            raw = bytes.fromhex(sig)
        except ValueError:
            raise errors.Unauthorized("Temp URL invalid") from None
    if algo not in DIGESTS or algo not in allowed:
        raise errors.Unauthorized("Temp URL invalid")
    return algo, raw


def keys(store, account: str, container: str) -> list[str]:
    found = []
    ameta = store.account_meta(account)
    for k in ("X-Account-Meta-Temp-URL-Key", "X-Account-Meta-Temp-URL-Key-2"):
        if ameta.get(k):
            found.append(ameta[k])
    cinfo = store.get_container(account, container)
    if cinfo is not None:
        for k in ("X-Container-Meta-Temp-URL-Key", "X-Container-Meta-Temp-URL-Key-2"):
            if cinfo.get(k):
                found.append(cinfo.get(k))
    return found


def signed_paths(full_path: str) -> list[str]:
    """The request path as a client may have signed it."""
    paths = [full_path]
    at = full_path.find("/v1/")
    if at > 0:
        paths.append(full_path[at:])
    return paths


def check(req, store, account: str, container: str, obj: str, opts) -> None:
    q = req.query
    expires = _expires(q.get("temp_url_expires"))
    if expires < time.time():
        raise errors.Unauthorized("Temp URL expired")
    if q.get("temp_url_ip_range"):
        raise errors.Unauthorized("Temp URL invalid")
    algo, sig = _signature(q.get("temp_url_sig", ""), opts.tempurl_digests)
    method = req.method
    methods = [method] if method != "HEAD" else ["HEAD", "GET", "PUT", "POST"]
    if method not in opts.tempurl_methods and method != "HEAD":
        raise errors.Unauthorized("Temp URL invalid")
    full = req.raw.url.path
    prefix = q.get("temp_url_prefix")
    if prefix is not None:
        if not obj.startswith(prefix):
            raise errors.Unauthorized("Temp URL invalid")
        base = full[:len(full) - len(obj)] if full.endswith(obj) else full
        targets = ["prefix:" + p + prefix for p in signed_paths(base)]
    else:
        targets = signed_paths(full)
    for key in keys(store, account, container):
        for m in methods:
            for target in targets:
                body = f"{m}\n{expires}\n{target}".encode()
                mac = hmac.new(key.encode(), body, DIGESTS[algo]).digest()
                if hmac.compare_digest(mac, sig):
                    return
    raise errors.Unauthorized("Temp URL invalid")


def disposition(req, obj: str, headers: dict[str, str]) -> None:
    q = req.query
    if "inline" in q:
        filename = q.get("filename")
        headers["Content-Disposition"] = (
            f'inline; filename="{filename}"' if filename else "inline")
        return
    filename = q.get("filename") or obj.rsplit("/", 1)[-1]
    safe = filename.replace('"', "\\\"")
    headers["Content-Disposition"] = (
        f'attachment; filename="{safe}"; '
        f"filename*=UTF-8''{urllib.parse.quote(filename)}")
