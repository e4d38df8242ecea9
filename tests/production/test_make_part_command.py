"""manage.py make_part: the whole pipeline for one part, synchronously, into a directory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.builders import make_machine, make_part

# The whole pipeline in one process: its point is the geometry, not the database.
pytestmark = [pytest.mark.django_db, pytest.mark.cad]
ROOT = Path(__file__).resolve().parents[2]


def test_it_writes_every_file_and_a_report_of_each_step(tmp_path):
    make_part("block")
    make_machine()
    call_command("make_part", "block", "--param", "width=30", "--out", str(tmp_path))
    names = {p.name for p in tmp_path.iterdir()}
    assert {"part.step", "part.stl", "part.gcode", "traveler.pdf", "report.json"} <= names
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["parameters"] == {"height": 10, "hole_d": 5, "width": 30}
    assert [s["status"] for s in report["steps"].values()] == ["ok"] * 6
    assert report["steps"]["routing"]["machine"] == "mk4-1"
    assert (tmp_path / "traveler.pdf").read_bytes().startswith(b"%PDF-")
    assert b"G1 " in (tmp_path / "part.gcode").read_bytes()


@pytest.mark.parametrize(
    "args, reason",
    [
        (["nope"], "unknown part 'nope'"),
        (["block", "--param", "width=abc"], "bad parameter: width: must be a number"),
        (["block", "--param", "width"], "--param must be NAME=VALUE"),
        (["block", "--material", "gold"], "material 'gold' is not offered"),
        (["block", "--param", "width=300"], "larger than every capable machine"),
    ],
)
def test_it_refuses_with_a_one_line_reason(tmp_path, args, reason):
    make_part("block")
    make_machine()
    with pytest.raises(CommandError, match=reason):
        call_command("make_part", *args, "--out", str(tmp_path))


def test_a_refusal_exits_non_zero_from_the_shell(tmp_path):
    env = {**os.environ, "MF_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/db"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    result = subprocess.run(
        [sys.executable, "manage.py", "make_part", "no-such-part", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "CommandError: unknown part 'no-such-part'"
