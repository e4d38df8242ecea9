"""`manage.py validate_mesh FILE`: the report, and exit 0 pass/warn, 1 fail, 2 unreadable."""

import io
import json
from pathlib import Path

import pytest
import trimesh
from django.core.management import call_command

from catalog.models import Material
from tests.builders import make_machine, make_material

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("validate_mesh", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit:
        code = exit.code
    return code, out.getvalue(), err.getvalue()


def mesh_file(tmp_path: Path, mesh: trimesh.Trimesh, name: str = "part.stl") -> str:
    path = tmp_path / name
    path.write_bytes(mesh.export(file_type="stl"))
    return str(path)


def test_a_good_part_exits_0_against_a_typical_printer_when_none_is_configured(tmp_path):
    code, out, _ = run(mesh_file(tmp_path, trimesh.creation.box((20, 20, 10))))
    assert code == 0
    assert out.splitlines()[0].endswith("part.stl: PASS")
    assert "machine default-fdm (fdm): pass" in out
    assert "print orientation: as modelled (−Z down)" in out


def test_a_warning_still_exits_0(tmp_path):
    pin = trimesh.creation.cylinder(radius=1.5, height=40, sections=64)
    code, out, _ = run(mesh_file(tmp_path, pin))
    assert code == 0
    assert "WARN tipping" in out


def test_a_failed_check_exits_1_and_says_what_to_change(tmp_path):
    tube = trimesh.creation.annulus(r_min=4.7, r_max=5, height=20)
    make_machine("mk4-1")
    code, out, _ = run(mesh_file(tmp_path, tube), "--machine", "mk4-1")
    assert code == 1
    assert "FAIL min_wall [mk4-1]: thinnest wall 0.3 mm, MK4-1 cannot print walls thinner" in out
    assert "measured 0.3 mm; limit ≥ 0.8 mm (fails below 0.4 mm)" in out


def test_json_output_is_the_stored_report(tmp_path):
    make_machine("mk4-1")
    make_machine("mini-1", volume=(180, 180, 180))
    code, out, _ = run(mesh_file(tmp_path, trimesh.creation.box((200, 20, 10))), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["fits"] == ["mk4-1"]
    assert sorted(m["key"] for m in report["machines"]) == ["mini-1", "mk4-1"]


@pytest.mark.parametrize(
    "content", [b"", b"\x89PNG\r\n\x1a\n" + bytes(200), b"solid x\nfacet normal x y z\nendsolid\n"]
)
def test_unreadable_input_exits_2(tmp_path, content):
    path = tmp_path / "junk.stl"
    path.write_bytes(content)
    code, out, _ = run(str(path))
    assert code == 2
    assert "FAIL readable" in out


def test_a_missing_file_or_unknown_machine_exits_2(tmp_path):
    code, _, err = run(str(tmp_path / "nowhere.stl"))
    assert code == 2
    assert "cannot read" in err
    code, _, err = run(mesh_file(tmp_path, trimesh.creation.box((5, 5, 5))), "--machine", "nope")
    assert (code, err.strip()) == (2, "no machine with the slug 'nope'")


def test_process_cnc_checks_against_a_typical_mill(tmp_path):
    code, out, _ = run(
        mesh_file(tmp_path, trimesh.creation.box((50, 40, 10))), "--process", "cnc_mill"
    )
    assert code == 0
    assert "two_and_a_half_d" in out
    assert "machine default-cnc (cnc_mill): pass" in out


def test_process_cnc_and_laser_with_a_material_check_its_plates_and_sheets(tmp_path):
    make_material("acrylic")
    Material.objects.filter(slug="acrylic").update(sheet_thicknesses_mm=[2, 3, 5])
    plate = mesh_file(tmp_path, trimesh.creation.box((50, 40, 4)))
    code, out, _ = run(plate, "--process", "laser", "--material", "acrylic")
    assert code == 1
    assert (
        "FAIL sheet_thickness [default-laser]: the plate is 4.0 mm thick and there is no sheet "
        "of that thickness: the material comes in 2, 3, 5 mm sheet; make it one of those"
    ) in out
    assert "ok   min_feature [default-laser]: every cut-out is wider than the 0.2 mm kerf" in out
    code, out, _ = run(plate, "--process", "cnc_mill", "--material", "acrylic")
    assert code == 0
    assert "ok   plate_stock [default-cnc]: milled from 5 mm plate, 1.0 mm faced off" in out
    assert "ok   inside_corners [default-cnc]" in out
    assert run(plate, "--process", "laser", "--material", "nope")[0] == 2
