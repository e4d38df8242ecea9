"""The web process loads no CAD or mesh library: those are the worker's (production.runner).

Each check starts a fresh interpreter, since this test process has loaded them all already.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# CadQuery and OpenCascade, the mesh libraries, and what they pull in.
HEAVY = ("cadquery", "OCP", "trimesh", "numpy", "shapely", "scipy", "rtree")

IMPORT_THE_WEB = f"""
import importlib, json, sys
import django
django.setup()
import microfactory.wsgi
from django.urls import URLPattern, URLResolver, get_resolver

def walk(resolver):
    importlib.import_module(resolver.urlconf_name) if isinstance(
        resolver.urlconf_name, str
    ) else None
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            walk(pattern)
        elif isinstance(pattern, URLPattern):
            importlib.import_module(pattern.callback.__module__)

walk(get_resolver())
print(json.dumps(sorted(name for name in {HEAVY!r} if name in sys.modules)))
"""


def fresh_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "microfactory.settings",
        "MF_VAR_DIR": str(tmp_path),
        # The database does not matter here; SQLite keeps the inner run off the outer one's.
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
    }


def test_the_wsgi_application_and_every_urlconf_and_view_import_no_cad_library(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_THE_WEB],
        cwd=ROOT,
        env=fresh_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_station_and_part_page_requests_load_no_cad_library(tmp_path):
    """The station's job page and a traveler rendered on request (WeasyPrint, which the web
    process does load), and the part page: tests/web_requests_probe.py, in a fresh pytest."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/web_requests_probe.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
        ],
        cwd=ROOT,
        env=fresh_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout
