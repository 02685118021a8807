"""Big bodies: uploads received straight from the socket in big buffers, downloads
sent by the kernel. Same answers as any other body: ETag checked, ranges honoured,
100-continue answered, nothing left of a refused upload."""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.parse

import pytest

from .conftest import assert_swift_error, tmp_files

MIB = 1024 * 1024


@pytest.fixture(params=[False, True], ids=["cached", "direct_io"])
def cloud(request, pocketstack_cloud_factory):
    """Both ways of keeping big objects: through the page cache, and O_DIRECT."""
    return pocketstack_cloud_factory(enabled_services=["identity", "objectstore"],
                                     **{"objectstore.direct_io": request.param})


def test_big_object_round_trip_and_ranges(swift, store):
    assert swift.put("b").status_code == 201
    data = os.urandom(9 * MIB + 123)  # several buffers and a tail that is not whole pages
    etag = hashlib.md5(data).hexdigest()
    r = swift.put("b/one", content=data, headers={"ETag": etag})
    assert r.status_code == 201 and r.headers["etag"] == etag
    # The HTTP parser never saw the body: this connection closes after the answer.
    assert r.headers["connection"] == "close"
    r = swift.get("b/one")
    assert r.status_code == 200 and r.headers["etag"] == etag
    assert r.headers["content-length"] == str(len(data)) and r.content == data
    assert r.headers["x-trans-id"] and r.headers["x-openstack-request-id"]
    r = swift.get("b/one", headers={"Range": "bytes=1000-5000999"})
    assert r.status_code == 206 and r.content == data[1000:5001000]
    assert r.headers["content-range"] == f"bytes 1000-5000999/{len(data)}"
    r = swift.get("b/one", headers={"Range": "bytes=-100000"})
    assert r.status_code == 206 and r.content == data[-100000:]
    assert swift.head("b/one").headers["content-length"] == str(len(data))
    listed = swift.get("b", params={"format": "json", "prefix": "one"}).json()
    assert [(o["name"], o["bytes"], o["hash"]) for o in listed] == [("one", len(data), etag)]

    # Under a buffer's worth, the body comes the ordinary way: the connection stays.
    r = swift.put("b/mid", content=data[:2 * MIB])
    assert r.status_code == 201 and "connection" not in r.headers
    assert swift.get("b/mid").content == data[:2 * MIB]

    # A wrong ETag on a big body: 422 and nothing stored.
    r = swift.put("b/two", content=data, headers={"ETag": "0" * 32})
    assert_swift_error(r, 422)
    assert swift.head("b/two").status_code == 404
    assert not tmp_files(store)


def test_big_chunked_upload_etag_checked(swift, store):
    assert swift.put("c").status_code == 201
    data = os.urandom(5 * MIB + 7)

    def pieces():
        for i in range(0, len(data), 65536):
            yield data[i:i + 65536]

    r = swift.put("c/bad", content=pieces(), headers={"ETag": "f" * 32})
    assert_swift_error(r, 422)
    assert swift.head("c/bad").status_code == 404
    assert not tmp_files(store)
    etag = hashlib.md5(data).hexdigest()
    r = swift.put("c/good", content=pieces(), headers={"ETag": etag})
    assert r.status_code == 201 and r.headers["etag"] == etag
    assert swift.get("c/good").content == data
    assert swift.head("c").headers["x-container-bytes-used"] == str(len(data))


def test_big_upload_with_expect_100_continue(swift):
    assert swift.put("e").status_code == 201
    data = os.urandom(6 * MIB)
    url = urllib.parse.urlsplit(swift.cloud.url)
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.settimeout(30)
        sock.sendall((f"PUT /object-store/v1/{swift.account}/e/o HTTP/1.1\r\nHost: x\r\n"
                      f"X-Auth-Token: {swift.token}\r\nContent-Length: {len(data)}\r\n"
                      f"Expect: 100-continue\r\n\r\n").encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 100")
        sock.sendall(data)
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 201")
    assert f"etag: {hashlib.md5(data).hexdigest()}".encode() in reply.lower()
    assert swift.get("e/o").content == data
