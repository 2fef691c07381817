"""Flags: the command line (both spellings), the environment, and refusing to start without secrets."""
import os
import subprocess
import sys

import pytest

from rtserver.config import DEV_SECRET, load


def test_flags_take_both_spellings_and_the_command_line_wins_over_the_environment():
    settings = load(["--port", "9000", "--packet-ttl=60", "--redis-cluster", "--dev",
                     "--job-interval", "0.5"],
                    {"RTSERVER_PORT": "1", "RTSERVER_PAYMENT_TIMEOUT": "90"})
    assert (settings.port, settings.packet_ttl, settings.payment_timeout) == (9000, 60, 90)
    assert settings.redis_cluster is True and settings.job_interval == 0.5


def test_every_flag_reads_its_environment_variable():
    settings = load([], {"RTSERVER_TOKEN_SECRET": "t" * 32, "RTSERVER_ADMIN_TOKEN": "a" * 32,
                         "RTSERVER_MYSQL_URL": "mysql://u:p@db:3307/x", "RTSERVER_DEV": "false",
                         "RTSERVER_ALLOWED_ORIGINS": "https://chat.example"})
    assert settings.mysql_url == "mysql://u:p@db:3307/x"
    assert settings.allowed_origins == "https://chat.example" and settings.dev is False


def test_a_missing_secret_outside_dev_stops_the_server_from_starting():
    with pytest.raises(SystemExit, match="--token-secret"):
        load([], {}).require_secrets()
    with pytest.raises(SystemExit, match="--admin-token"):
        load(["--token-secret", "x" * 32], {}).require_secrets()
    assert load(["--dev"], {}).require_secrets().token_secret == DEV_SECRET
    assert load([], {}).mysql_url, "migrate and audit need no secrets"


def test_serve_without_secrets_says_what_is_missing():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTSERVER_")}
    result = subprocess.run([sys.executable, "-m", "server.cli", "serve"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "--token-secret (or RTSERVER_TOKEN_SECRET) is required" in result.stderr
