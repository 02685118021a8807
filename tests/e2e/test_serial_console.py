"""The serial console of a real container guest: `openstack console url show
--serial` gives a websocket URL on the cloud's own proxy; a websocket client
on it types on the guest's console and reads what the guest's shell answers."""

from __future__ import annotations

from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.e2e.test_servers import _wait, cloud  # noqa: F401 - the container-driver cloud


def _read_until(ws, text: bytes, sent: bytes | None = None) -> bytes:
    """Read console bytes until ``text`` shows (typing ``sent`` again while it
    does not: the guest may still be booting)."""
    seen = b""
    for _ in range(300):
        try:
            seen += ws.recv(timeout=0.5)
        except TimeoutError:
            if sent is not None:
                ws.send(sent)
        if text in seen:
            return seen
    raise AssertionError(f"{text!r} not on the console; got {seen[-500:]!r}")


def test_serial_console_is_interactive(cloud):  # noqa: F811
    conn = cloud.connect()
    server = conn.compute.create_server(name="serial", image_id=cloud.image_id,
                                        flavor_id="42", networks="none")
    server = _wait(lambda: (lambda s: s if s.status != "BUILD" else None)(
        conn.compute.get_server(server)), timeout=180, what="server built")
    assert server.status == "ACTIVE", server.fault
    _wait(lambda: "pocketstack-guest: booting" in (
        conn.compute.get_server_console_output(server)["output"]), what="guest booted")
    url = cloud.cli("console", "url", "show", "--serial", "serial")["url"]
    assert url.startswith("ws://") and "/console/serial?token=" in url
    with ws_connect(url, open_timeout=20, subprotocols=["binary"]) as ws:
        # busybox init asks before it starts the console shell
        _read_until(ws, b"# ", sent=b"\r")
        ws.send(b"echo serial-$((6*7)) on $(hostname)\r")
        assert b"serial-42 on serial" in _read_until(ws, b"serial-42 on serial")
    # what went over the console is in its log too
    assert "serial-42 on serial" in conn.compute.get_server_console_output(server)["output"]
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=0.2, wait=60)
    try:
        ws_connect(url, open_timeout=20)
    except InvalidStatus as exc:  # the token went with the server
        assert exc.response.status_code == 403
    else:
        raise AssertionError("a deleted server's console token still opened the console")
