"""The versioned in-process bus."""

from __future__ import annotations

import pytest

from pocketstack.common import rpc


class Endpoint:
    target_version = "1.3"

    def echo(self, ctx, value):
        return {"value": value, "ctx": ctx}

    @rpc.wants_version
    def renamed(self, ctx, new=None, old=None, _version="1.0"):
        return {"got": new if new is not None else old, "version": _version}

    def boom(self, ctx):
        raise ValueError("bad thing")


@pytest.fixture
def transport():
    t = rpc.InProcessTransport()
    server = rpc.RPCServer(t, "topic", "host-1", [Endpoint()], workers=2)
    server.start()
    yield t
    server.stop()


def test_call_cast_and_versions(transport):
    client = rpc.RPCClient(transport, "topic", version="1.3")
    assert client.call({"user": "u"}, "echo", value=[1, 2])["value"] == [1, 2]
    assert client.prepare(server="host-1").call({}, "echo", value="x")["value"] == "x"
    old = rpc.RPCClient(transport, "topic", version="1.0")
    assert old.call({}, "renamed", old=5) == {"got": 5, "version": "1.0"}
    with pytest.raises(rpc.UnsupportedVersion):
        rpc.RPCClient(transport, "topic", version="1.4").call({}, "echo", value=1)
    with pytest.raises(rpc.UnsupportedVersion):
        rpc.RPCClient(transport, "topic", version="2.0").call({}, "echo", value=1)
    with pytest.raises(rpc.RPCError) as err:
        client.call({}, "boom")
    assert err.value.kind == "ValueError"
    with pytest.raises(rpc.RPCError):
        client.call({}, "missing")


def test_messages_are_json_only(transport):
    client = rpc.RPCClient(transport, "topic", version="1.3")
    with pytest.raises(TypeError):
        client.call({}, "echo", value=object())


def test_version_rules():
    assert rpc.version_ok("1.0", "1.2") and rpc.version_ok("1.2", "1.2")
    assert not rpc.version_ok("1.3", "1.2") and not rpc.version_ok("1.0", "2.0")
    assert rpc.version_ok("2.0", "2.5")
