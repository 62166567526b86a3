"""Crash points kill the process for real, once across processes, and never in production settings."""

import os
import signal
import subprocess
import sys

import pytest

from wallet.core import faults

PROGRAM = """
import django
django.setup()
from wallet.core.faults import crash_point
crash_point("withdrawal.reserved")
print("survived")
"""


def _run(tmp_path, points: str, **extra_env: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        **extra_env,
        "WALLET_CRASH_POINTS": points,
        "WALLET_CRASH_MARKER_DIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join(["src", "."]),
    }
    return subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_an_armed_point_kills_the_first_process_and_lets_the_next_one_through(tmp_path):
    first = _run(tmp_path, "withdrawal.reserved")
    assert first.returncode == -signal.SIGKILL
    assert "survived" not in first.stdout
    assert (tmp_path / "withdrawal.reserved.fired").exists()

    second = _run(tmp_path, "withdrawal.reserved")
    assert second.returncode == 0, second.stderr
    assert "survived" in second.stdout


def test_an_unarmed_point_does_nothing(tmp_path):
    result = _run(tmp_path, "webhook.claimed")
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_point_name_is_a_mistake(settings):
    settings.WALLET_CRASH_POINTS = frozenset({"no.such.point"})
    with pytest.raises(ValueError, match="unknown crash point"):
        faults.crash_point("no.such.point")


def test_production_settings_never_arm_a_crash_point(tmp_path):
    result = _run(
        tmp_path,
        "withdrawal.reserved",
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="a" * 20 + "production-grade-secret-key-with-enough-variety-0123456789",
        JWT_SIGNING_KEY="another-long-random-value-for-jwt-signing-0123456789",
        DJANGO_ALLOWED_HOSTS="api.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "survived" in result.stdout
