"""manage.py make_part: the worker's steps for one part or any mesh, synchronously."""

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import trimesh
from django.core.management import CommandError, call_command

from production.models import Job
from tests.builders import make_machine, make_material, make_order, make_part
from tests.integration.conftest import database_url
from tests.production.test_runner import (
    holed_box_stl,
    make_static_part,
    order_static,
    run_to_the_end,
)

# The whole pipeline in one process: its point is the geometry, not the database.
pytestmark = [pytest.mark.django_db, pytest.mark.cad]
ROOT = Path(__file__).resolve().parents[2]
STEP_FILE = ROOT / "tests/data/meshes/block-20x10x5.step"


def make(*args: str) -> dict:
    """Run make_part with --json; its report."""
    out = io.StringIO()
    call_command("make_part", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def refused(*args: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        call_command("make_part", *args, stdout=io.StringIO())
    return caught.value


def box_stl(tmp_path: Path, size=(20, 20, 10), name="box.stl") -> Path:
    path = tmp_path / name
    path.write_bytes(trimesh.creation.box(size).export(file_type="stl"))
    return path


def solid_shells(gcode: str) -> tuple[int, int]:
    """How many layers (each starts with ;Z:) are solid at the bottom and at the top; the first
    layer over sparse infill bridges it."""
    solid = [
        ";TYPE:Solid infill\n" in layer or ";TYPE:Bridge infill\n" in layer
        for layer in gcode.split(";Z:")[1:]
    ]
    return solid.index(False), solid[::-1].index(False)


def header(gcode: str, name: str) -> str:
    return re.search(rf"^; {name} = (.*)$", gcode, re.MULTILINE).group(1)


# --- a catalog part ---------------------------------------------------------------------------


def test_it_writes_every_file_and_a_report_of_each_step(tmp_path):
    make_part("block")
    make_machine()
    call_command(
        "make_part", "block", "--param", "width=30", "--out", str(tmp_path), stdout=io.StringIO()
    )
    names = {p.name for p in tmp_path.iterdir()}
    assert {"part.step", "part.stl", "part.gcode", "traveler.pdf", "report.json"} <= names
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["parameters"] == {"height": 10, "hole_d": 5, "width": 30}
    assert list(report["steps"]) == ["geometry", "validation", "toolpath", "traveler", "routing"]
    assert {s["status"] for s in report["steps"].values()} == {"ok"}
    assert report["steps"]["routing"]["machine"] == "mk4-1"
    assert (tmp_path / "traveler.pdf").read_bytes().startswith(b"%PDF-")
    assert b"G1 " in (tmp_path / "part.gcode").read_bytes()


@pytest.mark.parametrize(
    "args, reason",
    [
        (["nope"], "unknown part 'nope'"),
        (["block", "--param", "width=abc"], "bad parameter: Width must be a number"),
        (["block", "--param", "width"], "--param must be NAME=VALUE"),
        (["block", "--material", "gold"], "material 'gold' is not offered"),
        (["block", "--param", "width=300"], "larger than every capable machine"),
        (["block", "--machine", "nope"], "no fdm machine 'nope'"),
        ([], "name a part family, or give --mesh FILE"),
    ],
)
def test_it_refuses_with_a_one_line_reason_and_exit_1(tmp_path, args, reason):
    make_part("block")
    make_machine()
    error = refused(*args, "--out", str(tmp_path))
    assert reason in str(error) and "\n" not in str(error)
    assert error.returncode == 1


def test_a_refusal_exits_non_zero_from_the_shell(tmp_path):
    # The suite's test database, migrated already: the commands only read its (empty) tables.
    env = {**os.environ, "MF_VAR_DIR": str(tmp_path), "DATABASE_URL": database_url()}
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
    missing = subprocess.run(
        [sys.executable, "manage.py", "make_part", "--mesh", str(tmp_path / "nothing.stl")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr.strip().splitlines()[-1]


# --- the same steps as the worker -----------------------------------------------------------


def test_make_part_and_a_worker_job_make_the_same_gcode_and_dfm_report(tmp_path, user):
    make_part("block")
    make_machine()
    tall = {"width": 10, "height": 40, "hole_d": 2}  # the DFM report lays it on its side
    params = [arg for name, value in tall.items() for arg in ("--param", f"{name}={value}")]
    report = make("block", *params, "--out", str(tmp_path))
    job = run_to_the_end(make_order(user=user, parameters=tall).lines.get().jobs.get().pk)
    assert job.status == Job.Status.ROUTED, job.reason
    worker_gcode = job.job_artifacts.get(kind="gcode").artifact.file.read()
    assert (tmp_path / "part.gcode").read_bytes() == worker_gcode
    assert report["steps"]["validation"]["report"] == job.dfm_report
    toolpath = {k: v for k, v in report["steps"]["toolpath"].items() if k in job.toolpath_meta}
    assert toolpath == job.toolpath_meta
    assert job.toolpath_meta["orientation"].startswith("on its side")


def test_a_static_mesh_part_is_repaired_as_the_worker_repairs_it(tmp_path, user):
    make_static_part("holed", holed_box_stl())
    make_machine()
    report = make("holed", "--out", str(tmp_path))
    job = run_to_the_end(order_static(user, "holed").pk)
    assert job.status == Job.Status.ROUTED, job.reason
    repaired = job.job_artifacts.get(kind="repaired").artifact.file.read()
    assert (tmp_path / "part-repaired.stl").read_bytes() == repaired
    assert (tmp_path / "part.gcode").read_bytes() == job.job_artifacts.get(
        kind="gcode"
    ).artifact.file.read()
    assert report["steps"]["toolpath"]["sliced_mesh"]["repaired"] is True
    assert report["steps"]["validation"]["report"] == job.dfm_report
    assert "part.step" not in report["files"]  # an STL part has no STEP model


# --- --mesh -------------------------------------------------------------------------------------


def test_any_stl_mesh_goes_through_validation_toolpath_and_traveler(tmp_path):
    make_machine()
    report = make("--mesh", str(box_stl(tmp_path)), "--out", str(tmp_path / "out"))
    assert report["part"] == "box.stl" and report["material"] == "pla"
    assert report["steps"]["validation"]["report"]["extents_mm"] == [20, 20, 10]
    assert report["steps"]["toolpath"]["layers"] == 50
    assert report["steps"]["routing"]["machine"] == "mk4-1"
    assert report["files"] == ["drawing.svg", "part.gcode", "part.stl", "traveler.pdf"]


def test_a_step_file_is_converted_and_made(tmp_path):
    make_machine()
    report = make("--mesh", str(STEP_FILE), "--out", str(tmp_path))
    assert sorted(report["steps"]["validation"]["report"]["extents_mm"]) == [5, 10, 20]
    assert report["steps"]["validation"]["report"]["status"] != "fail"
    assert (tmp_path / "part.step").read_bytes().startswith(b"ISO-10303-21;")  # re-exported
    assert (tmp_path / "traveler.pdf").read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"just some notes, not a model\n", "neither a STEP nor an STL"),
        (b"", "the file is empty"),
        (b"ISO-10303-21;\nHEADER;\ngarbage\nEND-ISO-10303-21;\n", "step"),
    ],
)
def test_a_file_that_is_not_a_mesh_exits_2(tmp_path, content, reason):
    make_machine()
    path = tmp_path / "notes.stl"
    path.write_bytes(content)
    error = refused("--mesh", str(path))
    assert error.returncode == 2
    assert reason.lower() in str(error).lower()


def test_a_missing_file_exits_2(tmp_path):
    make_machine()
    error = refused("--mesh", str(tmp_path / "nothing.stl"))
    assert error.returncode == 2 and "cannot read" in str(error)


def test_an_unmakeable_mesh_exits_1_with_the_failed_check(tmp_path):
    make_machine()
    path = box_stl(tmp_path, size=(300, 10, 10), name="bar.stl")
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("make_part", "--mesh", str(path), "--json", stdout=out)
    assert caught.value.returncode == 1
    assert "larger than every capable machine" in str(caught.value)
    report = json.loads(out.getvalue())
    assert report["steps"]["validation"]["status"] == "rejected"
    assert report["steps"]["validation"]["report"]["status"] == "fail"


def test_no_machine_with_the_material_refuses(tmp_path):
    make_machine()  # with PLA loaded
    make_material("petg")
    error = refused("--mesh", str(box_stl(tmp_path)), "--material", "petg")
    assert error.returncode == 1 and "no machine has PETG loaded" in str(error)


# --- slicer options -----------------------------------------------------------------------------


def test_layer_height_changes_the_layer_count(tmp_path):
    make_machine()
    mesh = str(box_stl(tmp_path))
    default = make("--mesh", mesh)
    fine = make("--mesh", mesh, "--layer-height", "0.1", "--out", str(tmp_path / "fine"))
    assert default["steps"]["toolpath"]["layers"] == 50
    assert fine["steps"]["toolpath"]["layers"] == 98  # 0.25 mm first, then 0.1 mm to 10 mm
    assert fine["steps"]["toolpath"]["layer_height_mm"] == 0.1
    assert header((tmp_path / "fine/part.gcode").read_text(), "layer_height") == "0.1"


def test_every_slicer_option_shows_in_the_program(tmp_path):
    make_machine()
    mesh = str(box_stl(tmp_path))
    make("--mesh", mesh, "--out", str(tmp_path / "default"))
    options = {
        "--first-layer-height": "0.3",
        "--perimeters": "4",
        "--top-layers": "5",
        "--bottom-layers": "2",
        "--infill": "35",
        "--brim": "4",
    }
    report = make(
        "--mesh",
        mesh,
        *[a for pair in options.items() for a in pair],
        "--out",
        str(tmp_path / "set"),
    )
    default = (tmp_path / "default/part.gcode").read_text()
    gcode = (tmp_path / "set/part.gcode").read_text()
    meta = report["steps"]["toolpath"]
    assert report["settings"] == {
        "first_layer_height_mm": 0.3,
        "perimeters": 4,
        "top_layers": 5,
        "bottom_layers": 2,
        "infill_percent": 35.0,
        "brim_width_mm": 4.0,
    }
    assert header(gcode, "first_layer_height") == "0.3" and meta["first_layer_height_mm"] == 0.3
    assert gcode.splitlines().count(";TYPE:External perimeter") > 0
    assert header(gcode, "perimeters") == "4" and meta["perimeters"] == 4
    assert header(gcode, "top_solid_layers") == "5" and header(gcode, "bottom_solid_layers") == "2"
    assert solid_shells(default) == (3, 3)
    assert solid_shells(gcode) == (2, 5)
    assert header(gcode, "fill_density") == "35%" and meta["infill_percent"] == 35
    assert meta["brim_width_mm"] == 4
    first_layer = lambda text: text.split(";Z:")[1]  # noqa: E731
    assert first_layer(gcode).count("G1 ") > first_layer(default).count("G1 ") + 20  # brim loops
    assert meta["verification"]["checks"]  # the G-code was checked against the part


def test_the_engine_option_slices_with_prusaslicer(tmp_path):
    make_machine()
    report = make("--mesh", str(box_stl(tmp_path)), "--engine", "prusaslicer", "--perimeters", "3")
    meta = report["steps"]["toolpath"]
    assert meta["engine"].lower().startswith("prusaslicer")
    assert meta["profile_key"][-1] == "prusaslicer"
    assert meta["perimeters"] == 3


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--layer-height", "-0.2"], "--layer-height must be a positive number of mm"),
        (["--layer-height", "thick"], "--layer-height must be a positive number of mm"),
        (["--first-layer-height", "0"], "--first-layer-height must be a positive number"),
        (["--perimeters", "1.5"], "--perimeters must be a whole number"),
        (["--top-layers", "-1"], "--top-layers must be a whole number, 0 or more"),
        (["--infill", "150"], "--infill must be a percentage from 0 to 100"),
        (["--brim", "-3"], "--brim must be a width in mm"),
        (["--engine", "cura"], "--engine must be one of builtin, prusaslicer"),
        (["--layer-height", "0.6"], "more than the 0.4 mm nozzle"),
    ],
)
def test_a_bad_option_value_is_refused_with_exit_1(tmp_path, args, reason):
    make_machine()
    error = refused("--mesh", str(box_stl(tmp_path)), *args)
    assert error.returncode == 1
    assert reason in str(error)


def test_json_without_out_prints_the_report_only(tmp_path):
    make_machine()
    report = make("--mesh", str(box_stl(tmp_path)))
    assert report["steps"]["traveler"]["status"] == "ok"
    assert "files" not in report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["box.stl"]


# --- copies on plates -------------------------------------------------------------------------


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def test_five_copies_make_one_plate_whose_gcode_prints_each_copy(tmp_path):
    make_part("block")
    make_machine()
    args = ("block", "--param", "width=10", "--param", "height=3", "--param", "hole_d=3")
    call_command(
        "make_part", *args, "--quantity", "5", "--out", str(tmp_path), stdout=io.StringIO()
    )
    report = json.loads((tmp_path / "report.json").read_text())
    plan = report["plates"]
    assert (plan["status"], plan["copies"], plan["lower_bound_plates"]) == ("ok", 5, 1)
    (plate,) = plan["plates"]
    assert [c["copy"] for c in plate["copies"]] == [1, 2, 3, 4, 5]
    rows = plate["verification"]["copies"]
    assert [row["label"] for row in rows] == [f"job 1 copy {n}" for n in range(1, 6)]
    assert {row["status"] for row in rows} == {"pass"}
    assert plan["estimated_time_s"] == plate["estimated_time_s"] > 0
    assert {"plate-1.gcode", "plate-1.pdf"} <= set(report["files"])
    assert b"G1 " in (tmp_path / "plate-1.gcode").read_bytes()
    text = pdf_text(tmp_path / "plate-1.pdf")
    assert "Plate 1 of 1" in text and "MAKE-PART P1" in text
    assert all(f"{n} of 5" in text for n in range(1, 6))  # a QC row per copy


def test_copies_beyond_one_plate_go_on_further_plates_summing_to_the_quantity(tmp_path):
    make_part("block")
    make_machine(volume=(80, 80, 100))
    args = ("block", "--param", "width=20", "--param", "height=3")
    report = make(*args, "--quantity", "5", "--out", str(tmp_path))
    plates = report["plates"]["plates"]
    assert len(plates) >= 2
    copies = sorted(c["copy"] for plate in plates for c in plate["copies"])
    assert copies == [1, 2, 3, 4, 5]  # every copy once, none dropped
    for plate in plates:
        assert {row["status"] for row in plate["verification"]["copies"]} == {"pass"}
        assert (tmp_path / f"plate-{plate['number']}.gcode").exists()
        assert f"Plate {plate['number']} of {len(plates)}" in pdf_text(
            tmp_path / f"plate-{plate['number']}.pdf"
        )


def test_a_quantity_needing_more_plates_than_a_plan_may_hold_is_refused_with_the_number(
    tmp_path, settings
):
    settings.PLATES_MAX_PER_PLAN = 1
    make_part("block")
    make_machine(volume=(80, 80, 100))
    error = refused("block", "--param", "width=20", "--param", "height=3", "--quantity", "9")
    assert "9 copies need" in str(error) and "at most 1" in str(error)
    assert error.returncode == 1


@pytest.mark.parametrize("quantity", ["0", "-2", "2.5", "x", "501"])
def test_a_bad_quantity_is_refused_before_any_work(tmp_path, quantity):
    make_part("block")
    make_machine()
    error = refused("block", "--quantity", quantity)
    assert "--quantity must be a whole number from 1 to 500" in str(error)
    assert error.returncode == 1
