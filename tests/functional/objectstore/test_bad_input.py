"""Bad input gets a 4xx, nothing is written, nothing leaks; aborted uploads vanish."""

from __future__ import annotations

import os
import socket
import time
import urllib.parse

from .conftest import assert_swift_error, tmp_files


def raw_request(swift, method: str, path: str, headers: dict[str, str], body: bytes = b"",
                close_after_send: bool = False) -> bytes:
    """Send a request byte for byte (names httpx would normalise, broken uploads)."""
    url = urllib.parse.urlsplit(swift.cloud.url)
    sock = socket.create_connection((url.hostname, url.port))
    head = f"{method} {path} HTTP/1.1\r\nHost: {url.netloc}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode() + body)
    if close_after_send:
        sock.close()
        return b""
    sock.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    return data


def test_bad_object_and_container_names(swift, store):
    assert swift.put("c").status_code == 201
    prefix = f"/object-store/v1/{swift.account}"
    auth = {"X-Auth-Token": swift.token, "Content-Length": "1"}
    for name in ("a/../b", "..", "x/./y", "%2F%2F", "/", "a%00b", "%00",
                 "o" * 1025):
        reply = raw_request(swift, "PUT", f"{prefix}/c/{name}", auth, b"x")
        status = int(reply.split(b" ", 2)[1])
        assert 400 <= status < 500, (name, reply[:200])
    assert swift.get("c").status_code == 204  # nothing written
    assert swift.head("c").headers["x-container-object-count"] == "0"
    assert not tmp_files(store)
    # 1024 bytes is fine.
    assert swift.put("c/" + "o" * 1024, content=b"x").status_code == 201

    assert_swift_error(swift.put("k" * 257), 400)
    assert swift.put("k" * 256).status_code == 201
    # A container name with a slash is an object path in a container that does not exist.
    r = swift.put("new%2Fname")
    assert r.status_code == 404
    assert "new" not in swift.get("").text.split()
    reply = raw_request(swift, "PUT", f"{prefix}/bad%00name",
                        {"X-Auth-Token": swift.token, "Content-Length": "0"})
    assert reply.startswith(b"HTTP/1.1 400")
    # No length and not chunked: 411.
    reply = raw_request(swift, "PUT", f"{prefix}/c/nolen", {"X-Auth-Token": swift.token})
    assert reply.startswith(b"HTTP/1.1 411")
    # Objects in containers that do not exist: 404.
    assert_swift_error(swift.put("nope/o", content=b"x"), 404)
    # Deleting a non-empty container: 409; a missing one 404.
    assert_swift_error(swift.delete("c"), 409)
    assert_swift_error(swift.delete("ghost"), 404)
    # Listing parameters.
    assert_swift_error(swift.get("c", params={"limit": "x"}), 412)
    assert_swift_error(swift.get("c", params={"delimiter": "ab"}), 412)


def test_disconnect_mid_upload_leaves_nothing(swift, store):
    assert swift.put("d").status_code == 201
    path = f"/object-store/v1/{swift.account}/d/partial"
    headers = {"X-Auth-Token": swift.token, "Content-Length": str(8 * 1024 * 1024)}
    raw_request(swift, "PUT", path, headers, os.urandom(3 * 1024 * 1024),
                close_after_send=True)
    # Chunked upload cut off before the last chunk.
    headers = {"X-Auth-Token": swift.token, "Transfer-Encoding": "chunked"}
    chunk = os.urandom(200000)
    raw_request(swift, "PUT", path + "2", headers,
                f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n", close_after_send=True)
    deadline = time.monotonic() + 20
    while tmp_files(store):
        assert time.monotonic() < deadline, tmp_files(store)
        time.sleep(0.05)
    assert swift.head("d/partial").status_code == 404
    assert swift.head("d/partial2").status_code == 404
    assert swift.head("d").headers["x-container-object-count"] == "0"
    assert swift.get("d").status_code == 204


def test_body_shorter_than_length_is_not_stored(swift, store):
    assert swift.put("s").status_code == 201
    # Half a body, then the client shuts its sending side and waits for the answer.
    import urllib.parse as up
    url = up.urlsplit(swift.cloud.url)
    sock = socket.create_connection((url.hostname, url.port))
    head = (f"PUT /object-store/v1/{swift.account}/s/short HTTP/1.1\r\nHost: x\r\n"
            f"X-Auth-Token: {swift.token}\r\nContent-Length: 100\r\n\r\n").encode()
    sock.sendall(head + b"x" * 50)
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(30)
    try:
        sock.recv(1024)
    except OSError:
        pass
    sock.close()
    deadline = time.monotonic() + 20
    while tmp_files(store):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert swift.head("s/short").status_code == 404


def test_disconnect_mid_download_closes_the_file(swift, store):
    assert swift.put("g").status_code == 201
    assert swift.put("g/big", content=os.urandom(16 * 1024 * 1024)).status_code == 201
    path = store.disk.path(swift.account, "g", "big")

    def open_count() -> int:
        n = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}") == path:
                    n += 1
            except OSError:
                pass
        return n

    url = urllib.parse.urlsplit(swift.cloud.url)
    for _ in range(3):
        sock = socket.create_connection((url.hostname, url.port))
        sock.sendall((f"GET /object-store/v1/{swift.account}/g/big HTTP/1.1\r\nHost: x\r\n"
                      f"X-Auth-Token: {swift.token}\r\n\r\n").encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.close()
    deadline = time.monotonic() + 20
    while open_count():
        assert time.monotonic() < deadline, "the object file stayed open"
        time.sleep(0.05)
    assert swift.get("g/big").status_code == 200
