"""Big bodies through ``bodystream`` where the server is not uvicorn (here Starlette's
test client): the request body comes in ASGI messages, the file goes out in blocks."""

import hashlib
import os

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from pocketstack.common import bodystream


def make_app(tmp_path, seen: list):
    async def upload(request):
        length = request.headers.get("content-length")
        body = bodystream.RequestBody(request, int(length) if length else None)
        md5 = hashlib.md5()
        out = open(tmp_path / "out", "wb")
        sizes = []

        def write(view):
            sizes.append(len(view))
            out.write(view)

        try:
            total = await bodystream.pump(body, [md5.update, write], buffer_size=1 << 20)
        finally:
            out.close()
        seen.append((body.conn, sizes))
        fd = os.open(tmp_path / "out", os.O_RDONLY)
        return bodystream.FileResponse(fd, 3, total - 3, status_code=200,
                                       headers={"Etag": md5.hexdigest()},
                                       media_type="application/octet-stream",
                                       on_close=lambda: os.close(fd))

    return Starlette(routes=[Route("/up", upload, methods=["PUT"])])


def test_pump_and_file_response_over_asgi(tmp_path):
    seen = []
    client = TestClient(make_app(tmp_path, seen))
    data = os.urandom(3 * (1 << 20) + 5)
    r = client.put("/up", content=data)
    assert r.status_code == 200 and r.headers["etag"] == hashlib.md5(data).hexdigest()
    assert r.content == data[3:]
    conn, sizes = seen[0]
    assert conn is None  # not uvicorn: no socket to take over
    assert sizes == [1 << 20] * 3 + [5]  # whole buffers, then the tail

    def pieces():
        for i in range(0, len(data), 70000):
            yield data[i:i + 70000]

    r = client.put("/up", content=pieces())
    assert r.headers["etag"] == hashlib.md5(data).hexdigest() and r.content == data[3:]


def test_a_failing_step_stops_the_body(tmp_path):
    import asyncio

    async def chunks():
        for _ in range(20):
            yield b"x" * 500000

    def broken(view):
        raise OSError("disk full")

    async def run():
        try:
            await bodystream.pump(bodystream.ChunkSource(chunks()), [broken],
                                  buffer_size=1 << 20)
        except OSError as exc:
            return str(exc)

    assert asyncio.run(run()) == "disk full"
