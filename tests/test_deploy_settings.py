"""The production environment in docker/production.env passes Django's deployment checks with a
real key, and refuses to start with the placeholder it ships or any other weak key."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def production_env() -> dict[str, str]:
    env = {}
    for line in (ROOT / "docker" / "production.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    return env


def passport_key(folder: Path) -> str:
    """A passport signing key where docker/production.env's Docker secret would be."""
    from production.passport import write_new_key

    path = folder / "passport_ed25519.pem"
    if not path.exists():
        write_new_key(path)
    return str(path)


def test_check_deploy_passes_with_the_production_environment(tmp_path):
    env = {
        **os.environ,
        **production_env(),
        "MF_PASSPORT_KEY_FILE": passport_key(tmp_path),
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


def start(tmp_path, **overrides: str) -> subprocess.CompletedProcess[str]:
    """`manage.py check --deploy` with the shipped production environment and overrides."""
    env = {
        **os.environ,
        **production_env(),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MF_VAR_DIR": str(tmp_path),
        "MF_PASSPORT_KEY_FILE": passport_key(tmp_path),
        **overrides,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_shipped_placeholder_key_refuses_to_start(tmp_path):
    result = start(tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY contains 'change-me'" in result.stderr
    assert "secrets.token_urlsafe(50)" in result.stderr


REAL_KEY = secrets.token_urlsafe(50)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": "s3cr3t-but-short"}, "SECRET_KEY is too short or too simple"),
        ({"SECRET_KEY": "ab" * 40}, "SECRET_KEY is too short or too simple"),  # 2 characters
        (
            {"SECRET_KEY": "django-insecure-" + REAL_KEY},
            "SECRET_KEY contains 'insecure'",
        ),
        ({"SECRET_KEY": REAL_KEY + "-PLACEHOLDER"}, "SECRET_KEY contains 'placeholder'"),
        ({"SECRET_KEY": "replace-with-" + REAL_KEY}, "SECRET_KEY contains 'replace'"),
        (
            {"SECRET_KEY": REAL_KEY, "SECRET_KEY_FALLBACKS": f"{REAL_KEY[::-1]},old-key"},
            "SECRET_KEY_FALLBACKS[1] is too short or too simple",
        ),
    ],
)
def test_a_weak_key_refuses_to_start_with_debug_off(tmp_path, overrides, message):
    result = start(tmp_path, **overrides)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr


def test_a_real_key_with_fallbacks_passes_every_deploy_check(tmp_path):
    result = start(
        tmp_path,
        SECRET_KEY=REAL_KEY,
        SECRET_KEY_FALLBACKS=f"{secrets.token_urlsafe(50)},{secrets.token_urlsafe(50)}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_with_debug_on_any_key_will_do(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "true", "SECRET_KEY": "dev", "MF_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"MF_ENERGY_EUR_PER_KWH": "thirty cents"}, "MF_ENERGY_EUR_PER_KWH must be an amount"),
        ({"MF_LABOUR_EUR_PER_HOUR": "-5"}, "MF_LABOUR_EUR_PER_HOUR must be an amount of zero"),
        ({"MF_LABOUR_EUR_PER_HOUR": "NaN"}, "MF_LABOUR_EUR_PER_HOUR must be an amount of zero"),
        ({"MF_EXPEDITE_FEE_PERCENT": "-10"}, "MF_EXPEDITE_FEE_PERCENT must be an amount of zero"),
        ({"MF_EXPEDITE_FEE_MIN": "a lot"}, "MF_EXPEDITE_FEE_MIN must be an amount"),
    ],
)
def test_a_cost_rate_that_is_not_an_amount_refuses_to_start(tmp_path, overrides, message):
    result = start(tmp_path, SECRET_KEY=REAL_KEY, **overrides)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr


@pytest.mark.parametrize("name", ["MF_PART_QUOTE_CACHE_S", "MF_PART_QUOTE_STALE_S"])
def test_a_negative_part_quote_period_refuses_to_start(tmp_path, name):
    result = start(tmp_path, SECRET_KEY=REAL_KEY, **{name: "-1"})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {name} is seconds, >= 0" in result.stderr
