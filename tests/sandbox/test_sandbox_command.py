"""``crmtier sandbox`` as an admin runs it: a real process, one JSON line, a usable config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib

import pytest
import requests


@pytest.mark.parametrize("crm", ["salesforce"])
def test_sandbox_command_prints_its_line_writes_config_and_stops_on_sigterm(tmp_path, crm):
    config = tmp_path / "crmtier.toml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crmtier",
            "sandbox",
            "--crm",
            crm,
            "--customers",
            "12",
            "--data-dir",
            str(tmp_path / "data"),
            "--write-config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("CRMTIER_")},
    )
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        assert info["crm"] == crm and info["base_url"].startswith("https://127.0.0.1:")
        assert set(info["credentials"]) == {"client_id", "client_secret"}
        text = config.read_text()
        assert info["credentials"]["client_secret"] not in text  # secrets only as env refs
        parsed = tomllib.loads(text)
        assert parsed["crm"]["client_secret"].startswith("env:")
        session = requests.Session()
        session.trust_env = False
        session.verify = info["ca_bundle"]
        calls = session.get(
            f"{info['base_url']}/__sandbox__/calls",
            headers={"Authorization": f"Bearer {info['control_token']}"},
            timeout=10,
        )
        assert calls.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "export CRMTIER_SF_CLIENT_SECRET=" in err


def test_unknown_crm_is_a_usage_error():
    result = subprocess.run(
        [sys.executable, "-m", "crmtier", "sandbox", "--crm", "dynamics"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "dynamics" in result.stderr
