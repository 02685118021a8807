"""The rootwrap layer checks every command against the shipped filters."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from pocketstack import config, rootwrap
from tests.conftest import missing


@pytest.fixture(autouse=True)
def _root():
    if os.geteuid() != 0:
        missing("root (rootwrap's in-process mode)")


@pytest.fixture
def helper():
    h = rootwrap.RootHelper()
    yield h
    h.close()


def test_allowed_command_runs(helper):
    out = helper.execute("ip", "-o", "link", "show", "lo")
    assert "lo:" in out


def test_command_outside_filters_is_refused_and_logged(helper, caplog):
    caplog.set_level(logging.WARNING, logger="pocketstack.rootwrap")
    with pytest.raises(rootwrap.Unauthorized):
        helper.execute("cat", "/etc/shadow")
    assert "unauthorized command refused: cat /etc/shadow" in caplog.text


def test_argument_outside_filters_is_refused(helper):
    # rm is only allowed on an instance directory, mkdir only in our cgroup tree
    with pytest.raises(rootwrap.Unauthorized):
        helper.execute("rm", "-rf", "--one-file-system", "/etc")
    with pytest.raises(rootwrap.Unauthorized):
        helper.execute("mkdir", "-p", "/sys/fs/cgroup/memory/elsewhere")
    # `ip netns exec` only chains to commands that are themselves allowed
    with pytest.raises(rootwrap.Unauthorized):
        helper.execute("ip", "netns", "exec", "x", "sh", "-c", "id")


def test_no_shell_metacharacters_interpreted(helper, tmp_path):
    marker = tmp_path / "pwned"
    # a name with shell syntax is one argv element, never parsed by a shell
    rc, _out, _err = helper.run("ip", "link", "show", f"x;touch {marker}")
    assert rc != 0
    assert not marker.exists()


def test_failed_command_raises_with_output(helper):
    with pytest.raises(rootwrap.ProcessExecutionError) as info:
        helper.execute("ip", "link", "show", "no-such-device-0")
    assert info.value.returncode != 0
    assert "no-such-device-0" in info.value.stderr


def test_daemon_mode_as_root(tmp_path):
    conf_path = rootwrap.write_config(str(tmp_path / "rootwrap.conf"))
    helper = rootwrap.RootHelper(
        daemon_command=[sys.executable, "-m", "pocketstack.rootwrap", "daemon", conf_path],
        in_process_when_root=False)
    try:
        assert "lo:" in helper.execute("ip", "-o", "link", "show", "lo")
        with pytest.raises(rootwrap.Unauthorized):
            helper.execute("cat", "/etc/shadow")
        # the same helper process serves every call
        first = helper._backend.client._process.pid
        helper.execute("ip", "-o", "link", "show", "lo")
        assert helper._backend.client._process.pid == first
    finally:
        helper.close()


def test_options_registered():
    conf = config.load([], {})
    assert conf.rootwrap.in_process_when_root is True
    helper = rootwrap.get(conf)
    assert helper is rootwrap.get(conf)
