"""Pure rules of object storage: names, ranges, ACLs, TempURL signatures."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from pocketstack.common import errors
from pocketstack.common.context import RequestContext
from pocketstack.objectstore import acl, tempurl
from pocketstack.objectstore.api import parse_ranges
from pocketstack.objectstore.core import (
    _seg_range,
    check_container_name,
    check_object_name,
    version_name,
)
from pocketstack.objectstore.index import _prefix_upper


@pytest.mark.parametrize("name", ["..", "a/../b", "./x", "x/.", "/", "///", "a\x00b",
                                  "o" * 1025, "", "\udcff"])
def test_bad_object_names(name):
    with pytest.raises(errors.BadRequest):
        check_object_name(name)


@pytest.mark.parametrize("name", ["a", "a/b/c", "..a", "a..", "/lead", "o" * 1024,
                                  "d\u00e9j\u00e0 vu", "a//b"])
def test_good_object_names(name):
    check_object_name(name)


@pytest.mark.parametrize("name", ["", "a/b", "c" * 257, "\x00", "..", "."])
def test_bad_container_names(name):
    with pytest.raises(errors.BadRequest):
        check_container_name(name)


def test_ranges():
    assert parse_ranges(None, 10) is None
    assert parse_ranges("bytes=0-3", 10) == [(0, 4)]
    assert parse_ranges("bytes=5-", 10) == [(5, 10)]
    assert parse_ranges("bytes=-3", 10) == [(7, 10)]
    assert parse_ranges("bytes=-30", 10) == [(0, 10)]
    assert parse_ranges("bytes=8-30", 10) == [(8, 10)]
    assert parse_ranges("bytes=0-1,4-5", 10) == [(0, 2), (4, 6)]
    assert parse_ranges("bytes=0-1,40-50", 10) == [(0, 2)]  # unsatisfiable parts dropped
    assert parse_ranges("bytes=5-2", 10) is None  # malformed: ignored
    assert parse_ranges("items=0-1", 10) is None
    assert parse_ranges("bytes=x-1", 10) is None
    assert parse_ranges("bytes=--1", 10) is None
    with pytest.raises(errors.RangeNotSatisfiable) as exc:
        parse_ranges("bytes=10-", 10)
    assert exc.value.headers == {"Content-Range": "bytes */10"}
    with pytest.raises(errors.RangeNotSatisfiable):
        parse_ranges("bytes=0-1", 0)


def test_segment_ranges_and_version_names():
    assert _seg_range("0-4", 10) == (0, 5)
    assert _seg_range("-3", 10) == (7, 10)
    assert _seg_range("2-", 10) == (2, 10)
    with pytest.raises(ValueError):
        _seg_range("10-12", 10)
    assert version_name("obj", "0000000001.00000") == "003obj/0000000001.00000"
    assert version_name("\u00e9", "1") == "002\u00e9/1"  # length in UTF-8 bytes
    assert _prefix_upper("ab") == "ac"
    assert _prefix_upper("") is None


class Opts:
    operator_roles = ["admin", "member"]
    reader_roles = ["reader"]
    reseller_admin_role = "ResellerAdmin"


def ctx(project="p1", user="u1", roles=("member",), **kw):
    return RequestContext(project_id=project, user_id=user, project_name=project + "-name",
                          user_name=user + "-name", roles=list(roles), **kw)


def test_account_roles():
    o = Opts()
    assert acl.account_role(None, "AUTH_p1", o) is None
    assert acl.account_role(ctx(), "AUTH_p1", o) == "owner"
    assert acl.account_role(ctx(), "AUTH_p2", o) is None
    assert acl.account_role(ctx(roles=["reader"]), "AUTH_p1", o) == "reader"
    assert acl.account_role(ctx(roles=["other"]), "AUTH_p1", o) is None
    assert acl.account_role(ctx(roles=["ResellerAdmin"]), "AUTH_p9", o) == "owner"
    assert acl.account_role(ctx(roles=["admin"]), "AUTH_p9", o) == "owner"


def test_container_acls():
    bob = ctx("p2", "u2")
    assert acl.allows_read("p2:*", bob, listing=True)
    assert acl.allows_read("p2-name:u2-name", bob, listing=True)
    assert acl.allows_read("*:u2", bob, listing=False)
    assert not acl.allows_read("p3:*", bob, listing=False)
    assert acl.allows_read(".r:*", None, listing=False)
    assert not acl.allows_read(".r:*", None, listing=True)
    assert acl.allows_read(".r:*,.rlistings", None, listing=True)
    assert acl.allows_read(".r:.example.com", None, listing=False,
                           referer="http://www.example.com/page")
    assert not acl.allows_read(".r:.example.com", None, listing=False,
                               referer="http://evil.org/")
    assert not acl.allows_read(".r:*,.r:-evil.org", None, listing=False,
                               referer="http://evil.org/")
    assert acl.allows_write("p2:u2", bob)
    assert not acl.allows_write(".r:*", None)
    assert not acl.allows_write("p2:u3", bob)
    assert acl.clean(".ref:*, p1:u1 ,.rlistings") == ".r:*,p1:u1,.rlistings"
    with pytest.raises(errors.BadRequest):
        acl.clean(".r:*", write=True)
    with pytest.raises(errors.BadRequest):
        acl.clean(".bogus:1")


def test_tempurl_signature_forms():
    key = b"k"
    body = b"GET\n1\n/v1/AUTH_a/c/o"
    hexsig = hmac.new(key, body, hashlib.sha256).hexdigest()
    assert tempurl._signature(hexsig, ["sha256"]) == ("sha256", bytes.fromhex(hexsig))
    import base64

    raw = hmac.new(key, body, hashlib.sha512).digest()
    b64 = "sha512:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert tempurl._signature(b64, ["sha512"]) == ("sha512", raw)
    with pytest.raises(errors.Unauthorized):
        tempurl._signature(hexsig, ["sha1"])  # digest not allowed
    with pytest.raises(errors.Unauthorized):
        tempurl._signature("abc", ["sha1", "sha256"])
    assert tempurl.signed_paths("/object-store/v1/AUTH_a/c/o") == [
        "/object-store/v1/AUTH_a/c/o", "/v1/AUTH_a/c/o"]
