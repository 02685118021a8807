"""etc/pocketstack.conf.sample is what `pocketstack config-sample` prints today."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE = os.path.join(ROOT, "etc", "pocketstack.conf.sample")


def test_sample_is_up_to_date():
    proc = subprocess.run([sys.executable, "-m", "pocketstack", "config-sample"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    with open(SAMPLE) as f:
        committed = f.read()
    assert proc.stdout == committed, (
        "etc/pocketstack.conf.sample is stale: regenerate it with "
        "`pocketstack config-sample --output etc/pocketstack.conf.sample`")


def test_sample_names_identity_options():
    with open(SAMPLE) as f:
        text = f.read()
    for line in ("[identity]", "#driver = sql", "#password_hash_rounds = 12", "[pam]",
                 "#service = login", "[catalog]", "#template_file = default_catalog.templates",
                 "[fernet_tokens]", "#max_active_keys = 3", "[token]", "#expiration = 3600"):
        assert line in text.splitlines(), line
