"""Remote consoles on the fake driver: URLs served by the cloud's own proxy, tokens
(hashed, expiring, admin-visible, per tenant, deleted with the server), Nova's
errors; the `openstack console url show` command."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import openstack.exceptions as osexc
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def _console(conn, server, protocol, kind, version="2.6"):
    return conn.compute.post(f"/servers/{server.id}/remote-consoles", json={
        "remote_console": {"protocol": protocol, "type": kind}}, microversion=version)


def test_remote_consoles_tokens_and_proxy(compute_env):
    env = compute_env(**{"fake.hosts": 1})
    conn, cloud = env.conn, env.cloud
    server = env.boot(name="consoled")

    console = conn.compute.create_server_remote_console(server, protocol="vnc", type="novnc")
    assert console.url.startswith(f"{cloud.url}/console/novnc?token=")
    serial = conn.compute.create_server_remote_console(server, protocol="serial", type="serial")
    assert serial.url.startswith(cloud.url.replace("http://", "ws://") + "/console/serial?")
    spice = conn.compute.create_console(server, console_type="spice-html5")
    assert spice["type"] == "spice-html5" and "/console/spice-html5?token=" in spice["url"]
    assert len({_token(console.url), _token(serial.url), _token(spice["url"])}) == 3

    # the admin looks a token up (2.31+); its connection details are the driver's
    info = conn.compute.validate_console_auth_token(_token(console.url))
    assert info.instance_uuid == server.id and info.host == "fake-1" and info.port == 5900
    old = conn.compute.get(f"/os-console-auth-tokens/{_token(console.url)}",
                           microversion="2.30")
    assert old.status_code == 400
    assert conn.compute.get("/os-console-auth-tokens/not-a-token",
                            microversion="2.31").status_code == 404

    # the 2.1 actions, gone in 2.6
    r = conn.compute.post(f"/servers/{server.id}/action",
                          json={"os-getSerialConsole": {"type": "serial"}}, microversion="2.1")
    assert r.status_code == 200 and r.json()["console"]["type"] == "serial"
    assert "/console/serial?token=" in r.json()["console"]["url"]
    r = conn.compute.post(f"/servers/{server.id}/action",
                          json={"os-getVNCConsole": {"type": "novnc"}}, microversion="2.5")
    assert r.status_code == 200 and r.json()["console"]["type"] == "novnc"
    r = conn.compute.post(f"/servers/{server.id}/action",
                          json={"os-getVNCConsole": {"type": "novnc"}}, microversion="2.6")
    assert r.status_code == 404

    # the proxy: a bad token is refused at the handshake; a good one of a console the
    # fake hypervisor does not really have is accepted and closed with the reason
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(serial.url.replace(_token(serial.url), "bogus"), open_timeout=10)
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):  # a token only opens its own console type
        ws_connect(serial.url.replace("/console/serial?", "/console/novnc?"), open_timeout=10)
    with ws_connect(serial.url, open_timeout=10, subprotocols=["binary"]) as ws:
        assert ws.subprotocol == "binary"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 4004
    assert "has no serial console" in closed.value.rcvd.reason

    # deleting the server deletes its tokens
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=0.02, wait=60)
    assert conn.compute.get(f"/os-console-auth-tokens/{_token(console.url)}",
                            microversion="2.31").status_code == 404


def test_console_errors_and_tenants(compute_env):
    env = compute_env(**{"fake.hosts": 1})
    conn, cloud = env.conn, env.cloud
    server = env.boot(name="errors")
    for protocol, kind, message in (("vnc", "serial", "Invalid console type serial"),
                                    ("vnc", "xvpvnc", "Invalid console type xvpvnc"),
                                    ("rdp", "rdp-html5", "Unavailable console type rdp."),
                                    ("telnet", "novnc", "telnet"),
                                    ("mks", "webmks", "mks")):  # mks is 2.8+
        r = _console(conn, server, protocol, kind)
        assert r.status_code == 400, (protocol, kind, r.text)
        assert message in r.json()["badRequest"]["message"]
    assert _console(conn, server, "mks", "webmks", "2.8").status_code == 200
    assert _console(conn, server, "vnc", "novnc", "2.5").status_code == 404
    r = conn.compute.post("/servers/00000000-0000-0000-0000-000000000000/remote-consoles",
                          json={"remote_console": {"protocol": "vnc", "type": "novnc"}},
                          microversion="2.6")
    assert r.status_code == 404

    # another tenant neither gets a console of this server nor looks tokens up
    user = cloud.make_user()
    other = cloud.connect(username=user["username"], password=user["password"],
                          project_name=user["project_name"])
    with pytest.raises(osexc.NotFoundException):
        other.compute.create_server_remote_console(server, protocol="vnc", type="novnc")
    token = _token(conn.compute.create_server_remote_console(
        server, protocol="vnc", type="novnc").url)
    assert other.compute.get(f"/os-console-auth-tokens/{token}",
                             microversion="2.31").status_code == 403

    # a stopped server has no console
    conn.compute.stop_server(server)
    env.wait_status(server, "SHUTOFF")
    r = _console(conn, server, "vnc", "novnc")
    assert r.status_code == 409 and "is not ready" in r.json()["conflictingRequest"]["message"]


def test_console_tokens_expire(compute_env):
    env = compute_env(**{"fake.hosts": 1, "consoleauth.token_ttl": 0})
    server = env.boot(name="expiring")
    url = env.conn.compute.create_server_remote_console(server, protocol="serial",
                                                        type="serial").url
    assert env.conn.compute.get(f"/os-console-auth-tokens/{_token(url)}",
                                microversion="2.31").status_code == 404
    with pytest.raises(InvalidStatus):
        ws_connect(url, open_timeout=10)


def test_openstack_console_url_show(compute_env):
    env = compute_env(**{"fake.hosts": 1})
    server = env.boot(name="cli-console")
    out = env.cloud.cli("console", "url", "show", "--serial", server.id)
    assert out["type"] == "serial" and "/console/serial?token=" in out["url"]
    info = env.conn.compute.validate_console_auth_token(_token(out["url"]))
    assert info.instance_uuid == server.id
