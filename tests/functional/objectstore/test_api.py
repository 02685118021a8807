"""Swift v1 behaviour over raw HTTP: listings, metadata, ranges, conditions, copies."""

from __future__ import annotations

import hashlib
import json
import time
import xml.etree.ElementTree as ET

import httpx

from .conftest import assert_swift_error, tmp_files


def put(swift, path, data=b"", **headers):
    r = swift.put(path, content=data, headers=headers)
    assert r.status_code in (201, 202), (path, r.status_code, r.text)
    return r


def test_info_and_catalog(cloud, swift):
    info = httpx.get(f"{cloud.url}/object-store/info").json()
    assert info["swift"]["max_object_name_length"] == 1024
    assert {"slo", "dlo", "tempurl", "formpost", "bulk_delete", "container_quotas",
            "account_quotas", "versioned_writes"} <= set(info)
    r = swift.head()
    assert r.status_code == 204
    assert r.headers["x-account-container-count"] == "0"
    assert r.headers["x-trans-id"] and r.headers["x-openstack-request-id"]


def test_listings(swift):
    put(swift, "c1")
    names = ["a", "b/1", "b/2", "b/3/x", "c", "d\u00e9"]
    for n in names:
        put(swift, f"c1/{n}", n.encode())
    put(swift, "c2")

    def listing(**params):
        r = swift.get("c1", params=params)
        assert r.status_code == 200, r.text
        return r

    assert listing().text.splitlines() == names
    rows = listing(format="json").json()
    assert [r["name"] for r in rows] == names
    first = rows[0]
    assert set(first) == {"hash", "last_modified", "bytes", "name", "content_type"}
    assert first["hash"] == hashlib.md5(b"a").hexdigest() and first["bytes"] == 1
    assert len(first["last_modified"]) == 26 and "T" in first["last_modified"]
    assert listing(prefix="b/").text.splitlines() == ["b/1", "b/2", "b/3/x"]
    assert listing(delimiter="/").text.splitlines() == ["a", "b/", "c", "d\u00e9"]
    assert listing(prefix="b/", delimiter="/", format="json").json() == [
        *[r for r in rows if r["name"] in ("b/1", "b/2")], {"subdir": "b/3/"}]
    assert listing(marker="b/2").text.splitlines() == ["b/3/x", "c", "d\u00e9"]
    assert listing(end_marker="b/2").text.splitlines() == ["a", "b/1"]
    assert listing(limit=2).text.splitlines() == ["a", "b/1"]
    assert listing(reverse="true").text.splitlines() == names[::-1]
    assert listing(reverse="true", marker="c", limit=2).text.splitlines() == ["b/3/x", "b/2"]
    assert listing(reverse="true", delimiter="/").text.splitlines() == ["d\u00e9", "c", "b/",
                                                                         "a"]
    root = ET.fromstring(listing(format="xml").content)
    assert root.tag == "container" and root.attrib["name"] == "c1"
    assert [o.find("name").text for o in root.findall("object")] == names
    assert swift.get("c1", params={"limit": "10001"}).status_code == 412
    # empty plain listing: 204; json: []
    put(swift, "empty")
    assert swift.get("empty").status_code == 204
    assert swift.get("empty", params={"format": "json"}).json() == []

    acct = swift.get("", params={"format": "json"}).json()
    assert [(c["name"], c["count"], c["bytes"]) for c in acct] == [
        ("c1", 6, sum(len(n.encode()) for n in names)), ("c2", 0, 0), ("empty", 0, 0)]
    assert swift.get("", params={"prefix": "c", "limit": 1}).text == "c1\n"
    root = ET.fromstring(swift.get("", params={"format": "xml"}).content)
    assert root.tag == "account" and [c.find("name").text for c in root] == ["c1", "c2",
                                                                               "empty"]
    head = swift.head()
    assert head.headers["x-account-container-count"] == "3"
    assert head.headers["x-account-object-count"] == "6"
    head = swift.head("c1")
    assert head.headers["x-container-object-count"] == "6"


def test_metadata(swift):
    put(swift, "m", **{"X-Container-Meta-Color": "red"})
    assert swift.head("m").headers["x-container-meta-color"] == "red"
    r = swift.post("m", headers={"X-Container-Meta-Size": "big",
                                 "X-Remove-Container-Meta-Color": "x"})
    assert r.status_code == 204
    h = swift.head("m").headers
    assert h["x-container-meta-size"] == "big" and "x-container-meta-color" not in h
    assert swift.post("", headers={"X-Account-Meta-Owner": "me"}).status_code == 204
    assert swift.head().headers["x-account-meta-owner"] == "me"
    put(swift, "m/o", b"x", **{"X-Object-Meta-A": "1", "X-Object-Meta-B": "2",
                               "Content-Disposition": "inline"})
    assert swift.post("m/o", headers={"X-Object-Meta-C": "3",
                                      "Content-Type": "text/x-new"}).status_code == 202
    h = swift.head("m/o").headers
    assert h["x-object-meta-c"] == "3" and "x-object-meta-a" not in h
    assert h["content-type"] == "text/x-new"
    assert swift.post("m/missing", headers={"X-Object-Meta-C": "3"}).status_code == 404
    assert_swift_error(swift.post("nocontainer"), 404)
    long = {"X-Object-Meta-" + "k" * 129: "v"}
    assert_swift_error(swift.put("m/long", content=b"x", headers=long), 400)
    assert_swift_error(swift.put("m/long", content=b"x",
                                 headers={"X-Object-Meta-K": "v" * 257}), 400)
    assert swift.head("m/long").status_code == 404


def test_object_put_get_range_conditional(swift, store):
    put(swift, "r")
    data = bytes(range(256)) * 40  # 10240 bytes
    etag = hashlib.md5(data).hexdigest()
    r = put(swift, "r/data.bin", data, ETag=etag)
    assert r.status_code == 201 and r.headers["etag"] == etag
    r = swift.get("r/data.bin")
    assert r.content == data and r.headers["etag"] == etag
    assert r.headers["accept-ranges"] == "bytes" and r.headers["last-modified"]
    assert r.headers["x-timestamp"] and r.headers["content-type"] == "application/octet-stream"

    r = swift.get("r/data.bin", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == "bytes 10-19/10240"
    r = swift.get("r/data.bin", headers={"Range": "bytes=-5"})
    assert r.content == data[-5:]
    r = swift.get("r/data.bin", headers={"Range": "bytes=10240-"})
    assert_swift_error(r, 416)
    assert r.headers["content-range"] == "bytes */10240"
    r = swift.get("r/data.bin", headers={"Range": "bytes=0-1,100-101,10230-20000"})
    assert r.status_code == 206
    ctype = r.headers["content-type"]
    assert ctype.startswith("multipart/byteranges;boundary=")
    boundary = ctype.split("=", 1)[1]
    parts = [p for p in r.content.split(b"--" + boundary.encode()) if p.strip(b"-\r\n")]
    bodies = [p.split(b"\r\n\r\n", 1)[1].rstrip(b"\r\n") for p in parts]
    assert bodies[0] == data[0:2] and bodies[1] == data[100:102]
    assert bodies[2] == data[10230:].rstrip(b"\r\n") or bodies[2] == data[10230:]
    assert b"Content-Range: bytes 10230-10239/10240" in r.content

    assert swift.get("r/data.bin", headers={"If-None-Match": etag}).status_code == 304
    assert swift.get("r/data.bin", headers={"If-Match": '"nope"'}).status_code == 412
    assert swift.get("r/data.bin", headers={"If-Match": etag}).status_code == 200
    lm = r.headers.get("last-modified") or swift.head("r/data.bin").headers["last-modified"]
    assert swift.get("r/data.bin", headers={"If-Modified-Since": lm}).status_code == 304
    assert swift.get("r/data.bin", headers={
        "If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 412
    assert swift.put("r/data.bin", content=b"x",
                     headers={"If-None-Match": "*"}).status_code == 412

    # Wrong ETag: 422, nothing written, nothing left in tmp.
    r = swift.put("r/bad", content=b"abc", headers={"ETag": "0" * 32})
    assert_swift_error(r, 422)
    assert swift.head("r/bad").status_code == 404
    assert "bad" not in swift.get("r").text.split()
    assert not tmp_files(store)

    # Chunked transfer encoding and content type detection.
    def gen():
        yield b"<html>"
        yield b"</html>"
    r = swift.put("r/page.html", content=gen())
    assert r.status_code == 201
    h = swift.head("r/page.html").headers
    assert h["content-type"] == "text/html" and h["content-length"] == "13"
    r = swift.put("r/d.json", content=b"{}", headers={"Content-Type": "text/plain",
                                                     "X-Detect-Content-Type": "true"})
    assert swift.head("r/d.json").headers["content-type"] == "application/json"

    assert swift.delete("r/data.bin").status_code == 204
    assert_swift_error(swift.delete("r/data.bin"), 404)
    assert_swift_error(swift.get("r/data.bin"), 404)


def test_copy(swift):
    put(swift, "src")
    put(swift, "dst")
    put(swift, "src/o", b"copy me", **{"X-Object-Meta-Color": "red", "Content-Type": "text/x"})
    r = swift.copy("src/o", headers={"Destination": "dst/o2", "X-Object-Meta-Size": "s"})
    assert r.status_code == 201, r.text
    assert r.headers["x-copied-from"] == "src/o"
    g = swift.get("dst/o2")
    assert g.content == b"copy me" and g.headers["x-object-meta-color"] == "red"
    assert g.headers["x-object-meta-size"] == "s" and g.headers["content-type"] == "text/x"
    r = swift.put("dst/o3", headers={"X-Copy-From": "/src/o", "X-Fresh-Metadata": "true"})
    assert r.status_code == 201
    g = swift.get("dst/o3")
    assert g.content == b"copy me" and "x-object-meta-color" not in g.headers
    assert_swift_error(swift.put("dst/o4", headers={"X-Copy-From": "src/none"}), 404)
    assert_swift_error(swift.copy("src/o", headers={"Destination": "nodst/o"}), 404)


def test_expiry(swift, store):
    put(swift, "e")
    put(swift, "e/soon", b"x", **{"X-Delete-After": "1"})
    put(swift, "e/later", b"x", **{"X-Delete-At": str(int(time.time()) + 3600)})
    assert swift.head("e/later").headers["x-delete-at"]
    assert_swift_error(swift.put("e/past", content=b"x", headers={"X-Delete-At": "100"}), 400)
    deadline = time.monotonic() + 10
    while swift.get("e/soon").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    import asyncio
    asyncio.run(store.expire())
    assert swift.get("e").text.split() == ["later"]
    assert swift.head("e").headers["x-container-object-count"] == "1"


def test_versions_location(swift):
    put(swift, "archive")
    put(swift, "v", **{"X-Versions-Location": "archive"})
    put(swift, "v/o", b"one")
    put(swift, "v/o", b"two")
    put(swift, "v/o", b"three")
    assert swift.get("v/o").content == b"three"
    arch = swift.get("archive", params={"format": "json"}).json()
    assert len(arch) == 2 and all(a["name"].startswith("001o/") for a in arch)
    assert swift.delete("v/o").status_code == 204
    assert swift.get("v/o").content == b"two"
    assert swift.delete("v/o").status_code == 204
    assert swift.get("v/o").content == b"one"
    assert swift.delete("v/o").status_code == 204
    assert swift.get("v/o").status_code == 404
    assert swift.get("archive", params={"format": "json"}).json() == []


def test_history_location(swift):
    put(swift, "hist")
    put(swift, "h", **{"X-History-Location": "hist"})
    put(swift, "h/o", b"one")
    put(swift, "h/o", b"two")
    assert swift.delete("h/o").status_code == 204
    assert swift.get("h/o").status_code == 404
    arch = swift.get("hist", params={"format": "json"}).json()
    assert [a["bytes"] for a in arch] == [3, 3]
    assert sorted(swift.get("hist/" + a["name"]).content for a in arch) == [b"one", b"two"]
    assert_swift_error(swift.put("bad", headers={"X-Versions-Location": "a",
                                                 "X-History-Location": "b"}), 400)


def test_quotas(cloud, swift):
    put(swift, "q", **{"X-Container-Meta-Quota-Bytes": "10",
                       "X-Container-Meta-Quota-Count": "2"})
    put(swift, "q/a", b"12345")
    assert_swift_error(swift.put("q/b", content=b"123456"), 413)
    put(swift, "q/b", b"12345")
    assert_swift_error(swift.put("q/c", content=b"1"), 413)
    assert swift.head("q").headers["x-container-object-count"] == "2"

    from .conftest import Swift
    member = Swift(cloud, cloud.make_user())
    put(member, "mine")
    r = member.post("", headers={"X-Account-Meta-Quota-Bytes": "5"})
    assert_swift_error(r, 403)
    # The cloud admin (reseller) sets it; then the member is held to it.
    r = swift.post("", account=member.account, headers={"X-Account-Meta-Quota-Bytes": "5"})
    assert r.status_code == 204
    put(member, "mine/a", b"123")
    assert_swift_error(member.put("mine/b", content=b"123"), 413)

    def chunks():
        yield b"12"
        yield b"34"
    assert_swift_error(member.put("mine/c", content=chunks()), 413)
    assert member.head("mine/b").status_code == 404


def test_acls_and_tenants(cloud, swift):
    from .conftest import Swift

    alice = Swift(cloud, cloud.make_user())
    bob = Swift(cloud, cloud.make_user())
    put(alice, "shared")
    put(alice, "shared/doc", b"alice's")
    # Other tenants get 403 on every level; anonymous 401; nothing leaks.
    for path in ("", "shared", "shared/doc"):
        r = bob.get(path, account=alice.account)
        assert_swift_error(r, 403)
        assert "alice" not in r.text
        assert_swift_error(bob.request("GET", path, account=alice.account, token=None), 401)
    assert_swift_error(bob.put("shared/x", account=alice.account, content=b"x"), 403)
    assert_swift_error(bob.delete("shared/doc", account=alice.account), 403)
    assert_swift_error(bob.put("new", account=alice.account), 403)
    # A read ACL naming bob's project lets him read and list, not write.
    r = alice.post("shared", headers={"X-Container-Read": f"{bob.project_id}:*"})
    assert r.status_code == 204
    assert bob.get("shared/doc", account=alice.account).content == b"alice's"
    assert bob.get("shared", account=alice.account).text == "doc\n"
    assert_swift_error(bob.put("shared/x", account=alice.account, content=b"x"), 403)
    # ... a write ACL lets him write.
    alice.post("shared", headers={"X-Container-Write": f"{bob.project_id}:{bob.creds['user_id']}"})
    assert bob.put("shared/x", account=alice.account, content=b"x").status_code == 201
    # The owner sees ACLs, the grantee does not.
    assert "x-container-read" in alice.head("shared").headers
    assert "x-container-read" not in bob.head("shared", account=alice.account).headers
    # .r:* with .rlistings: anonymous may list too.
    alice.post("shared", headers={"X-Container-Read": ".r:*,.rlistings"})
    anon = httpx.get(alice.url("shared"))
    assert anon.status_code == 200 and anon.text.split() == ["doc", "x"]
    assert_swift_error(alice.post("shared", headers={"X-Container-Write": ".r:*"}), 400)
    # A reader on the project may read but not write.
    reader = Swift(cloud, cloud.make_user(project=alice.creds["project_name"], role="reader"))
    assert reader.get("shared/doc").content == b"alice's"
    assert_swift_error(reader.put("shared/y", content=b"y"), 403)
    # Invalid token: 401
    assert_swift_error(alice.request("GET", "", token="bogus"), 401)


def test_dlo(swift):
    put(swift, "seg")
    for i in range(3):
        put(swift, f"seg/part/{i:02d}", bytes([65 + i]) * 5)
    put(swift, "seg/manifest", b"", **{"X-Object-Manifest": "seg/part/"})
    r = swift.get("seg/manifest")
    assert r.content == b"AAAAABBBBBCCCCC"
    assert r.headers["x-object-manifest"] == "seg/part/"
    want = hashlib.md5("".join(hashlib.md5(bytes([65 + i]) * 5).hexdigest()
                               for i in range(3)).encode()).hexdigest()
    assert r.headers["etag"] == f'"{want}"'
    assert swift.get("seg/manifest", headers={"Range": "bytes=3-11"}).content == b"AABBBBBCC"
    assert swift.head("seg/manifest").headers["content-length"] == "15"
    raw = swift.get("seg/manifest", params={"multipart-manifest": "get"})
    assert raw.content == b""


def test_slo_api(swift):
    put(swift, "s")
    segs = []
    for i in range(3):
        data = bytes([97 + i]) * 10
        put(swift, f"s/seg{i}", data)
        segs.append({"path": f"/s/seg{i}", "etag": hashlib.md5(data).hexdigest(),
                     "size_bytes": 10})
    segs[2]["range"] = "0-4"
    r = swift.put("s/big", params={"multipart-manifest": "put"}, content=json.dumps(segs))
    assert r.status_code == 201, r.text
    g = swift.get("s/big")
    assert g.content == b"a" * 10 + b"b" * 10 + b"c" * 5
    assert g.headers["x-static-large-object"] == "True"
    assert g.headers["etag"] == r.headers["etag"]
    assert swift.get("s/big", headers={"Range": "bytes=8-21"}).content == b"aabbbbbbbbbbcc"
    listing = swift.get("s", params={"format": "json", "prefix": "big"}).json()
    assert listing[0]["bytes"] == 25
    man = swift.get("s/big", params={"multipart-manifest": "get"}).json()
    assert [m["name"] for m in man] == ["/s/seg0", "/s/seg1", "/s/seg2"]
    rawfmt = swift.get("s/big", params={"multipart-manifest": "get", "format": "raw"}).json()
    assert rawfmt[2] == {"path": "/s/seg2", "etag": segs[2]["etag"], "size_bytes": 10,
                         "range": "0-4"}
    # Bad manifests: 400, nothing written.
    bad = [{"path": "/s/seg0", "etag": "0" * 32}]
    assert_swift_error(swift.put("s/bad", params={"multipart-manifest": "put"},
                                 content=json.dumps(bad)), 400)
    assert_swift_error(swift.put("s/bad", params={"multipart-manifest": "put"},
                                 content=json.dumps([{"path": "/s/none"}])), 400)
    assert_swift_error(swift.put("s/bad", params={"multipart-manifest": "put"},
                                 content=b"not json"), 400)
    for garbage in ({"path": "/s/seg0"}, [1], [{"path": 5}], [{"path": "/s/seg0", "x": 1}],
                    [{"path": "/s/seg0", "size_bytes": "ten"}],
                    [{"path": "/s/seg0", "etag": 7}], [{"path": "/nocontainer"}], []):
        assert_swift_error(swift.put("s/bad", params={"multipart-manifest": "put"},
                                     content=json.dumps(garbage)), 400)
    assert swift.head("s/bad").status_code == 404
    r = swift.delete("s/big", params={"multipart-manifest": "delete"},
                     headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json()["Number Deleted"] == 4
    assert swift.get("s", params={"format": "json"}).json() == []


def test_bulk_delete(swift):
    put(swift, "b1")
    put(swift, "b2")
    put(swift, "b1/x", b"1")
    put(swift, "b1/y z", b"1")
    body = "/b1/x\n/b1/y%20z\n/b1/missing\n/b1\n/b2/nothing\n"
    r = swift.post("", params={"bulk-delete": ""}, content=body,
                   headers={"Accept": "application/json", "Content-Type": "text/plain"})
    assert r.status_code == 200
    assert r.json() == {"Number Deleted": 3, "Number Not Found": 2, "Response Body": "",
                        "Response Status": "200 OK", "Errors": []}
    assert swift.get("", params={"format": "json"}).json()[0]["name"] == "b2"
    put(swift, "b2/keep", b"1")
    r = swift.post("", params={"bulk-delete": ""}, content="/b2\n",
                   headers={"Content-Type": "text/plain"})
    assert "409 Conflict" in r.text and "Response Status: 400 Bad Request" in r.text


def test_form_post(cloud, swift):
    import hmac

    put(swift, "forms")
    swift.post("", headers={"X-Account-Meta-Temp-URL-Key": "k"})
    path = f"/object-store/v1/{swift.account}/forms/up/"
    expires = int(time.time()) + 600
    redirect = "https://example.com/done"
    body = f"{path}\n{redirect}\n1024\n2\n{expires}"
    sig = hmac.new(b"k", body.encode(), "sha256").hexdigest()
    fields = {"redirect": redirect, "max_file_size": "1024", "max_file_count": "2",
              "expires": str(expires), "signature": sig}
    files = [("file1", ("a.txt", b"first", "text/plain")),
             ("file2", ("b.txt", b"second", "text/plain"))]
    r = httpx.post(cloud.url + path, data=fields, files=files)
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith(redirect + "?status=201")
    assert swift.get("forms/up/a.txt").content == b"first"
    assert swift.get("forms/up/b.txt").content == b"second"
    fields["signature"] = "0" * 64
    r = httpx.post(cloud.url + path, data=fields, files=files[:1])
    assert r.status_code == 401
    r = httpx.post(cloud.url + path, content=b"junk",
                   headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert_swift_error(r, 400)
    big = [("file1", ("c.txt", b"x" * 2000, "text/plain"))]
    fields["signature"] = sig
    r = httpx.post(cloud.url + path, data=fields, files=big)
    assert r.status_code == 303 and "status=400" in r.headers["location"]
    assert swift.head("forms/up/c.txt").status_code == 404


def test_tempurl_prefix_container_key_and_put(cloud, swift):
    import hmac

    put(swift, "tu", **{"X-Container-Meta-Temp-URL-Key": "ckey"})
    put(swift, "tu/docs/a.txt", b"A")
    put(swift, "tu/other.txt", b"O")
    expires = int(time.time()) + 300
    base = f"/object-store/v1/{swift.account}/tu/"
    body = f"GET\n{expires}\nprefix:{base}docs/"
    sig = hmac.new(b"ckey", body.encode(), "sha256").hexdigest()
    q = {"temp_url_sig": sig, "temp_url_expires": str(expires), "temp_url_prefix": "docs/"}
    r = httpx.get(cloud.url + base + "docs/a.txt", params=q)
    assert r.status_code == 200 and r.content == b"A"
    assert httpx.get(cloud.url + base + "other.txt", params=q).status_code == 401
    # A PUT URL with an ISO 8601 expiry.
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
    body = f"PUT\n{expires}\n{base}up.bin"
    sig = hmac.new(b"ckey", body.encode(), "sha1").hexdigest()
    r = httpx.put(cloud.url + base + "up.bin", content=b"via tempurl",
                  params={"temp_url_sig": sig, "temp_url_expires": iso})
    assert r.status_code == 201, r.text
    assert swift.get("tu/up.bin").content == b"via tempurl"
    # Expired.
    body = f"GET\n{int(time.time()) - 1}\n{base}up.bin"
    sig = hmac.new(b"ckey", body.encode(), "sha256").hexdigest()
    r = httpx.get(cloud.url + base + "up.bin",
                  params={"temp_url_sig": sig, "temp_url_expires": str(int(time.time()) - 1)})
    assert_swift_error(r, 401)


def test_non_ascii_names_in_headers(swift):
    import urllib.parse as up

    put(swift, "\u00e9t\u00e9")
    put(swift, "arch\u00efve")
    r = swift.post("\u00e9t\u00e9", headers={"X-Versions-Location": up.quote("arch\u00efve")})
    assert r.status_code == 204
    assert up.unquote(swift.head("\u00e9t\u00e9").headers["x-versions-location"]) == \
        "arch\u00efve"
    put(swift, "\u00e9t\u00e9/seg/1", b"ab")
    put(swift, "\u00e9t\u00e9/seg/2", b"cd")
    put(swift, "\u00e9t\u00e9/man", b"", **{"X-Object-Manifest": up.quote("\u00e9t\u00e9/seg/")})
    assert swift.get("\u00e9t\u00e9/man").content == b"abcd"
    r = swift.copy("\u00e9t\u00e9/seg/1", headers={"Destination": up.quote("arch\u00efve/\u00fc")})
    assert r.status_code == 201
    assert swift.get("arch\u00efve/\u00fc").content == b"ab"


def test_reseller_admin_reaches_every_account(cloud, swift):
    from .conftest import Swift

    conn = cloud.connect()
    conn.identity.create_role(name="ResellerAdmin")
    alice = Swift(cloud, cloud.make_user())
    put(alice, "private")
    put(alice, "private/o", b"alice")
    reseller = Swift(cloud, cloud.make_user(role="ResellerAdmin"))
    assert reseller.get("private/o", account=alice.account).content == b"alice"
    r = reseller.post("", account=alice.account, headers={"X-Account-Meta-Quota-Bytes": "1"})
    assert r.status_code == 204
    assert_swift_error(alice.put("private/p", content=b"xy"), 413)
    # A plain member of another project still gets 403.
    other = Swift(cloud, cloud.make_user())
    assert_swift_error(other.get("private/o", account=alice.account), 403)
