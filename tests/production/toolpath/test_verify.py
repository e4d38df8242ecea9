"""verify.py: a G-code passes only when it prints the part it was sliced from."""

import functools
import json
import re

import pytest

from microfactory.errors import Rejected
from production.toolpath import FdmProfile, Toolpath, plan_toolpath
from production.toolpath.verify import PASS, check_gcode, verify_gcode
from tests.production.toolpath.gcode_reader import (
    box_stl,
    make_profile,
    tube_stl,
    two_boxes_stl,
)

pytestmark = pytest.mark.cad  # slicing and G-code checks; no database

BOX = box_stl(20, 20, 10)


@functools.cache
def planned(stl: bytes, profile: FdmProfile) -> Toolpath:
    """Each distinct part and profile is sliced once per test run."""
    return plan_toolpath(stl, profile)


def box_gcode() -> str:
    return planned(BOX, make_profile()).gcode.decode()


def failed(gcode: str | bytes, stl: bytes = BOX, **options: object) -> set[str]:
    program = gcode.encode() if isinstance(gcode, str) else gcode
    report = check_gcode(program, stl=stl, profile=make_profile(), **options)  # type: ignore[arg-type]
    return {check.name for check in report.failures}


def replace_line(gcode: str, pattern: str, new: str, *, after: str = ";LAYER:10") -> str:
    """Swap the first line matching `pattern` found after the `after` marker."""
    head, marker, tail = gcode.partition(after + "\n")
    line = re.search(pattern, tail, flags=re.M)
    assert line is not None, pattern
    return head + marker + tail[: line.start()] + new + tail[line.end() :]


# --- what passes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stl",
    [BOX, tube_stl(6, 10, 12), two_boxes_stl(15, 10, 8)],
    ids=["box", "tube", "two bodies"],
)
def test_the_builtin_slicers_gcode_passes_for_its_own_part(stl: bytes) -> None:
    profile = make_profile()
    report = verify_gcode(planned(stl, profile).gcode, stl=stl, profile=profile)
    assert {check.status for check in report.checks} == {PASS}
    assert report.layers == planned(stl, profile).layers
    assert 0.15 < report.extruded_mm3 / report.part_volume_mm3 < 1.6


def test_the_report_names_every_check_and_survives_json() -> None:
    report = verify_gcode(box_gcode().encode(), stl=BOX, profile=make_profile())
    assert [check.name for check in report.checks] == [
        "numbers",
        "commands",
        "nozzle temperature",
        "bed temperature",
        "machine travel",
        "bed",
        "footprint",
        "height",
        "layers",
        "volume",
    ]
    assert report.max_z_mm == pytest.approx(10.05)
    assert report.part_volume_mm3 == pytest.approx(4000)
    assert json.loads(json.dumps(report.to_json()))["layers"] == 50


def test_a_klipper_gcode_heated_by_print_start_passes() -> None:
    profile = make_profile(flavour="klipper")
    program = planned(BOX, profile).gcode
    assert b"PRINT_START BED=60 EXTRUDER=210" in program
    verify_gcode(program, stl=BOX, profile=profile)


def test_relative_moves_and_extrusion_are_followed() -> None:
    absolute = box_gcode()
    relative = as_relative(absolute)
    assert "G91" in relative and "M83" in relative
    profile = make_profile()
    before = check_gcode(absolute.encode(), stl=BOX, profile=profile)
    after = check_gcode(relative.encode(), stl=BOX, profile=profile)
    assert not after.failures
    assert after.extruded_mm3 == pytest.approx(before.extruded_mm3, rel=1e-6)
    assert after.max_z_mm == pytest.approx(before.max_z_mm, abs=1e-3)


# --- what fails -------------------------------------------------------------------------------


def test_one_extrusion_outside_the_footprint_fails() -> None:
    # The part spans x 115..135 on the bed; x 160 is on the bed but nowhere near the part.
    moved = replace_line(box_gcode(), r"^G1 X[\d.]+ (Y[\d.]+ E[\d.]+)$", r"G1 X160.000 \1")
    assert failed(moved) == {"footprint"}
    with pytest.raises(Rejected, match="outside the part's footprint"):
        verify_gcode(moved.encode(), stl=BOX, profile=make_profile())


def test_the_gcode_of_a_smaller_part_fails_height_and_volume() -> None:
    smaller = planned(box_stl(10, 10, 5), make_profile()).gcode
    assert {"height", "volume", "layers"} <= failed(smaller)
    with pytest.raises(Rejected, match="the part is 10.000 mm tall"):
        verify_gcode(smaller, stl=BOX, profile=make_profile())


def test_the_volume_bounds_are_arguments() -> None:
    assert failed(box_gcode(), min_volume_ratio=0.9) == {"volume"}
    assert failed(box_gcode(), max_volume_ratio=0.2) == {"volume"}


@pytest.mark.parametrize("word", ["Xnan", "X1.2.3", "Xinf", "X1e3", "X#12"])
def test_a_coordinate_that_is_not_a_number_fails(word: str) -> None:
    garbage = replace_line(box_gcode(), r"^G1 X[\d.]+ (Y[\d.]+ E[\d.]+)$", f"G1 {word} " + r"\1")
    assert "numbers" in failed(garbage)


def test_bytes_that_are_not_text_fail() -> None:
    assert "numbers" in failed(box_gcode().encode() + b"\xff\xfe G1 X1\n")


def test_extruding_without_a_nozzle_temperature_fails() -> None:
    cold = re.sub(r"^M10[49] S\d+\n", "", box_gcode(), flags=re.M)
    assert failed(cold) == {"nozzle temperature"}
    with pytest.raises(Rejected, match="before any nozzle temperature"):
        verify_gcode(cold.encode(), stl=BOX, profile=make_profile())


def test_extruding_at_the_wrong_temperature_or_without_waiting_fails() -> None:
    gcode = box_gcode()
    assert failed(gcode.replace("M109 S210", "M109 S180")) == {"nozzle temperature"}
    assert failed(gcode.replace("M109 S210\n", "")) == {"nozzle temperature"}
    assert failed(gcode.replace("M190 S60", "M190 S110").replace("M140 S60", "M140 S110")) == {
        "bed temperature"
    }
    # Turning the heater off before the last layer leaves extrusion at 0 °C.
    assert failed(replace_line(gcode, r"^;LAYER:20$", ";LAYER:20\nM104 S0")) == {
        "nozzle temperature"
    }


def test_arcs_fail_as_unsupported_commands() -> None:
    arc = replace_line(box_gcode(), r"^G1 X[\d.]+ (Y[\d.]+ E[\d.]+)$", r"G2 X130.000 \1 I1 J1")
    assert "commands" in failed(arc)


def test_a_move_beyond_the_machine_fails() -> None:
    assert failed(box_gcode().replace("G0 Z20.050", "G0 Z230.000")) == {"machine travel"}
    off_bed = replace_line(box_gcode(), r"^G0 X[\d.]+ Y[\d.]+", "G0 X260.000 Y100.000")
    assert "machine travel" in failed(off_bed)


def test_a_purge_line_off_the_bed_fails() -> None:
    profile = make_profile()
    gcode = box_gcode().replace("G1 X65.000 Y3.000", "G1 X65.000 Y-3.000", 1)
    report = check_gcode(gcode.encode(), stl=BOX, profile=profile)
    assert {check.name for check in report.failures} == {"bed", "machine travel"}


# --- helpers ----------------------------------------------------------------------------------


def as_relative(gcode: str) -> str:
    """The same program with G91 and M83: every X, Y, Z and E written as a step."""
    position = {"X": 0.0, "Y": 0.0, "Z": 0.0, "E": 0.0}
    lines = []
    for line in gcode.splitlines():
        if line == "G90":
            line = "G91"
        elif line == "M82":
            line = "M83"
        elif line.startswith("G92 E0"):
            position["E"] = 0.0
        elif line.startswith(("G0 ", "G1 ")):
            words = []
            for word in line.split():
                axis, value = word[0], word[1:]
                if axis in position:
                    step = float(value) - position[axis]
                    position[axis] = float(value)
                    word = f"{axis}{step:.5f}"
                words.append(word)
            line = " ".join(words)
        lines.append(line)
    return "\n".join(lines)
