"""The production environment in docker/production.env passes Django's deployment checks."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def production_env() -> dict[str, str]:
    env = {}
    for line in (ROOT / "docker" / "production.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    return env


def test_check_deploy_passes_with_the_production_environment(tmp_path):
    env = {
        **os.environ,
        **production_env(),
        "SECRET_KEY": "k" * 20 + "-production-test-key-not-used-anywhere-" + "x" * 10,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MF_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_is_off_unless_asked():
    from django.conf import settings

    assert settings.DEBUG is False
