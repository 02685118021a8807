"""Image data moved past uvicorn's own body handling (pocketstack.common.bodystream):
big upload bodies of known length read off the socket, file-store downloads copied
by the kernel. Every byte must arrive, in order, and the connection must never be
misread afterwards."""

from __future__ import annotations

import hashlib
import os
import socket
from urllib.parse import urlsplit

from pocketstack.common.bodystream import BUFFER_SIZE


def check_data(admin, image_id: str, data: bytes) -> None:
    shown = admin.show(image_id)
    assert shown["status"] == "active" and shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert admin.get(f"/v2/images/{image_id}/file").content == data


def test_big_body_arrives_whole(cloud, admin):
    data = os.urandom(3 * BUFFER_SIZE + 12345)  # several full buffers and a partial one
    image = admin.create(name="big")
    r = admin.upload(image["id"], data)
    # Read past uvicorn's parser: this connection cannot serve another request.
    assert r.headers["connection"] == "close"
    check_data(admin, image["id"], data)


def test_small_and_chunked_bodies_keep_the_connection(cloud, admin):
    small = admin.create(name="small")
    r = admin.upload(small["id"], b"tiny")
    assert r.headers.get("connection") != "close"
    check_data(admin, small["id"], b"tiny")

    data = os.urandom(2 * BUFFER_SIZE + 7)
    chunked = admin.create(name="chunked")
    r = admin.put(f"/v2/images/{chunked['id']}/file",
                  content=(data[i:i + 100_000] for i in range(0, len(data), 100_000)),
                  headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204, r.text
    assert r.headers.get("connection") != "close"
    check_data(admin, chunked["id"], data)


def test_request_sent_right_after_a_body_is_not_read_as_part_of_it(cloud, admin):
    data = os.urandom(2 * BUFFER_SIZE + 3)
    image = admin.create(name="pipelined")
    url = urlsplit(cloud.url)
    head = (f"PUT /image/v2/images/{image['id']}/file HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"X-Auth-Token: {admin.token}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    then = (f"DELETE /image/v2/images/{image['id']} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"X-Auth-Token: {admin.token}\r\n\r\n").encode()
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(head + data + then)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    # One answer, to the upload; the connection closed before the next request was read.
    assert answer.startswith(b"HTTP/1.1 204 ") and answer.count(b"HTTP/1.1") == 1, answer
    assert b"connection: close" in answer.lower()
    check_data(admin, image["id"], data)


def test_downloads_whole_ranges_and_head(cloud, admin):
    data = os.urandom(9 * 1024 * 1024 + 5)
    image = admin.create(name="download")
    admin.upload(image["id"], data)
    path = f"/v2/images/{image['id']}/file"
    r = admin.get(path)
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-md5"] == hashlib.md5(data).hexdigest()
    r = admin.get(path, headers={"Range": "bytes=4194300-8388610"})
    assert r.status_code == 206 and r.content == data[4194300:8388611]
    assert r.headers["content-range"] == f"bytes 4194300-8388610/{len(data)}"
    r = admin.get(path, headers={"Range": "bytes=-7"})
    assert r.status_code == 206 and r.content == data[-7:]
    r = admin.head(path)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == str(len(data))
    # The connection serves the next request after each of these.
    assert admin.show(image["id"])["size"] == len(data)


def test_client_gone_mid_download(cloud, admin):
    data = os.urandom(64 * 1024 * 1024)
    image = admin.create(name="abandoned")
    admin.upload(image["id"], data)
    url = urlsplit(cloud.url)
    for _ in range(3):
        with socket.create_connection((url.hostname, url.port)) as sock:
            sock.sendall((f"GET /image/v2/images/{image['id']}/file HTTP/1.1\r\n"
                          f"Host: {url.netloc}\r\nX-Auth-Token: {admin.token}\r\n\r\n"
                          ).encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        # The next connections get their own answers, never the rest of this one's
        # (the connection's number is reused at once).
        for _ in range(3):
            assert admin.show(image["id"])["size"] == len(data)
    check_data(admin, image["id"], data)


def test_another_asgi_server_gets_the_ordinary_paths(cloud, admin):
    """Served by something else than uvicorn (here httpx calling the app in-process),
    bodies stream the ASGI way and files go out in blocks."""
    import asyncio

    import httpx

    data = os.urandom(5 * 1024 * 1024 + 11)
    image = admin.create(name="in-process")

    async def roundtrip():
        transport = httpx.ASGITransport(app=cloud.cloud.app())
        async with httpx.AsyncClient(transport=transport, base_url="http://cloud/image",
                                     headers={"X-Auth-Token": admin.token}) as client:
            r = await client.put(f"/v2/images/{image['id']}/file", content=data,
                                 headers={"Content-Type": "application/octet-stream"})
            assert r.status_code == 204, r.text
            r = await client.get(f"/v2/images/{image['id']}/file",
                                 headers={"Range": "bytes=1-4194310"})
            assert r.status_code == 206 and r.content == data[1:4194311]
            return (await client.get(f"/v2/images/{image['id']}/file")).content

    assert asyncio.run(roundtrip()) == data
    check_data(admin, image["id"], data)

