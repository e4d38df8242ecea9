import functools
import hashlib
import math
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from microfactory.errors import Rejected
from production.toolpath import ENGINE, FdmProfile, Toolpath, plan_toolpath
from production.toolpath.paths import SKIRT_GAP_MM
from tests.production.toolpath.gcode_reader import (
    BED_CENTRE,
    BED_MM,
    box_stl,
    extrusions,
    header_value,
    make_profile,
    seconds_of,
    stl_of,
    tube_stl,
    two_boxes_stl,
)

pytestmark = pytest.mark.cad  # slicing; no database

REPO = Path(__file__).resolve().parents[3]
# Kept beside the tests because this slicer's tests may only touch this folder; tests/data/
# is where the other golden files live.
GOLDEN = Path(__file__).resolve().parent / "data" / "box_10x10x1.gcode"
WIDTH = 0.4 * 1.125  # line width of the default 0.4 mm nozzle
FILAMENT_AREA = math.pi * (1.75 / 2) ** 2


@functools.cache
def planned(stl: bytes, profile: FdmProfile) -> Toolpath:
    """Each distinct part and profile is sliced once per test run."""
    return plan_toolpath(stl, profile)


def box() -> Toolpath:
    return planned(box_stl(20, 20, 10), make_profile())


def layers_of(toolpath: Toolpath) -> set[int | None]:
    return {move.layer for move in extrusions(toolpath.gcode)}


# --- layers -----------------------------------------------------------------------------------


def test_a_box_gets_a_first_layer_then_one_layer_per_layer_height() -> None:
    toolpath = planned(box_stl(30, 30, 20), make_profile())
    # 0.25 mm first layer, then (20 - 0.25) / 0.2 = 98.75 -> 99 layers of 0.2 mm
    assert toolpath.layers == 100
    markers = re.findall(rb"^;LAYER:(\d+)$", toolpath.gcode, flags=re.M)
    assert [int(m) for m in markers] == list(range(100))


def test_layer_count_follows_the_layer_height() -> None:
    toolpath = planned(box_stl(20, 20, 10), make_profile(layer_height_mm=0.3))
    assert abs(toolpath.layers - 10 / 0.3) <= 1
    last_z = float(re.findall(rb"^;Z:(\S+)$", toolpath.gcode, flags=re.M)[-1])
    assert abs(last_z - 10) <= 0.3 / 2 + 1e-9  # the top layer ends within half a layer


def test_every_layer_extrudes_and_e_only_rises_within_a_layer() -> None:
    toolpath = box()
    moves = extrusions(toolpath.gcode)
    assert layers_of(toolpath) == {None, *range(toolpath.layers)}  # None: the purge line
    for before, after in zip(moves, moves[1:], strict=False):
        assert after.e > after.e_before
        if before.layer == after.layer:
            assert after.e > before.e


# --- where the nozzle extrudes ----------------------------------------------------------------


def test_every_extrusion_stays_on_the_part_or_its_skirt_and_on_the_bed() -> None:
    toolpath = box()
    cx, cy = BED_CENTRE
    skirt = SKIRT_GAP_MM + WIDTH + 1e-3
    for move in extrusions(toolpath.gcode):
        for x, y in ((move.x0, move.y0), (move.x1, move.y1)):
            assert 0 <= x <= BED_MM[0] and 0 <= y <= BED_MM[1]
            if move.layer is None:
                continue  # the purge line at the front edge of the bed
            margin = skirt if move.layer == 0 else -WIDTH / 2 + 1e-3
            assert abs(x - cx) <= 10 + margin and abs(y - cy) <= 10 + margin


def test_the_hole_of_a_tube_is_left_open() -> None:
    toolpath = planned(tube_stl(5, 10, 10), make_profile())
    cx, cy = BED_CENTRE
    printed = [m for m in extrusions(toolpath.gcode) if m.layer is not None]
    nearest = min(m.distance_to(cx, cy) for m in printed)
    # The hole's wall is printed (an inner perimeter hugs it) but nothing crosses the hole.
    assert 5 + WIDTH / 2 - 0.05 <= nearest <= 5 + WIDTH


def test_two_separate_boxes_are_both_printed_and_nothing_between_them() -> None:
    toolpath = planned(two_boxes_stl(10, 10, 5), make_profile())
    # The pair spans 30 mm centred on the bed: boxes at x 110..120 and 130..140.
    left, gap, right = (110, 120), (120, 130), (130, 140)
    moves = [m for m in extrusions(toolpath.gcode) if m.layer not in (None, 0)]  # 0: skirt
    for move in moves:
        for x in (move.x0, move.x1, (move.x0 + move.x1) / 2):
            assert not gap[0] + 0.01 < x < gap[1] - 0.01
    for layer in range(toolpath.layers):
        xs = [m.x1 for m in extrusions(toolpath.gcode) if m.layer == layer]
        assert any(left[0] <= x <= left[1] for x in xs)
        assert any(right[0] <= x <= right[1] for x in xs)


def test_bottom_and_top_layers_are_solid_and_the_ones_between_sparse() -> None:
    toolpath = box()
    moves = extrusions(toolpath.gcode)
    solid = {m.layer for m in moves if m.kind == "Solid infill"}
    bridge = {m.layer for m in moves if m.kind == "Bridge infill"}
    sparse = {m.layer for m in moves if m.kind == "Internal infill"}
    last = toolpath.layers - 1
    # The first solid layer over sparse infill spans its gaps as a bridge.
    assert (solid, bridge) == ({0, 1, 2, last - 1, last}, {last - 2})
    assert sparse == set(range(3, last - 2))


def test_solid_infill_covers_the_first_layer_once() -> None:
    solid = [m for m in extrusions(box().gcode) if m.layer == 0 and m.kind == "Solid infill"]
    drawn_mm = sum(math.hypot(m.x1 - m.x0, m.y1 - m.y0) for m in solid)
    # Lines lie one spacing apart (a 0.25 mm layer's round-sided lines overlap their
    # neighbours); inside two perimeters, less the quarter spacing infill overlaps them.
    spacing = WIDTH - 0.25 * (1 - math.pi / 4)
    inner_side = 20 - 2 * (WIDTH / 2 + 1.25 * spacing)
    assert drawn_mm * spacing == pytest.approx(inner_side**2, rel=0.05)


def test_a_fuller_infill_uses_more_filament() -> None:
    sparse = planned(box_stl(20, 20, 10), make_profile(infill_density=0.1))
    dense = planned(box_stl(20, 20, 10), make_profile(infill_density=0.5))
    assert dense.filament_mm > 1.5 * sparse.filament_mm


@pytest.mark.parametrize(
    "stl, volume_mm3",
    [(box_stl(20, 20, 10), 20 * 20 * 10), (tube_stl(5, 10, 10), None)],
    ids=["box", "tube"],
)
def test_filament_roughly_matches_the_part_volume(stl: bytes, volume_mm3: float | None) -> None:
    toolpath = planned(stl, make_profile(infill_density=0.2))
    volume = volume_mm3 or trimesh.load_mesh(trimesh.util.wrap_as_stream(stl), "stl").volume
    assert 0.2 <= toolpath.filament_mm * FILAMENT_AREA / volume <= 1.5
    assert toolpath.filament_g == pytest.approx(
        toolpath.filament_mm * FILAMENT_AREA / 1000 * 1.24, abs=0.01
    )


def test_an_ascii_stl_slices_like_the_binary_one() -> None:
    mesh = trimesh.creation.cylinder(radius=8, height=6)
    binary = plan_toolpath(stl_of(mesh), make_profile())
    ascii_stl = mesh.export(file_type="stl_ascii").encode("ascii")
    ascii = plan_toolpath(ascii_stl, make_profile())
    assert ascii.layers == binary.layers
    assert ascii.filament_mm == pytest.approx(binary.filament_mm, rel=0.01)


# --- determinism ------------------------------------------------------------------------------


def test_the_same_part_and_profile_give_byte_identical_gcode() -> None:
    stl = two_boxes_stl(10, 10, 5)
    assert plan_toolpath(stl, make_profile()).gcode == plan_toolpath(stl, make_profile()).gcode


def test_another_process_with_another_hash_seed_writes_the_same_bytes() -> None:
    script = (
        "import hashlib, sys\n"
        "from production.toolpath import plan_toolpath\n"
        "from tests.production.toolpath.gcode_reader import box_stl, make_profile\n"
        "gcode = plan_toolpath(box_stl(20, 20, 10), make_profile()).gcode\n"
        "sys.stdout.write(hashlib.sha256(gcode).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, check=True
    )
    assert result.stdout.decode() == hashlib.sha256(box().gcode).hexdigest()


def test_a_small_box_matches_the_golden_gcode() -> None:
    gcode = plan_toolpath(box_stl(10, 10, 1), make_profile()).gcode
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_bytes(gcode)
    assert gcode == GOLDEN.read_bytes(), "rerun with UPDATE_GOLDEN=1 if intended; bump ENGINE"


# --- header, start and end ---------------------------------------------------------------------


def test_the_header_comments_carry_the_toolpath_numbers() -> None:
    toolpath = box()
    gcode = toolpath.gcode
    assert gcode.startswith(f"; generated by {ENGINE}\n".encode())
    assert toolpath.engine == ENGINE
    assert int(header_value(gcode, ";LAYER_COUNT:")) == toolpath.layers
    assert int(header_value(gcode, "; total layers count =")) == toolpath.layers
    assert float(header_value(gcode, "; filament used [mm] =")) == toolpath.filament_mm
    assert float(header_value(gcode, "; filament used [g] =")) == toolpath.filament_g
    duration = header_value(gcode, "; estimated printing time (normal mode) =")
    assert re.fullmatch(r"(\d+d )?(\d+h )?(\d+m )?\d+s", duration)
    assert seconds_of(duration) == toolpath.estimated_time_s
    assert int(header_value(gcode, ";TIME:")) == toolpath.estimated_time_s
    assert header_value(gcode, "; printer_model =") == "Prusa MK4"
    # PrusaSlicer repeats the summary at the end of the file, where Moonraker reads it.
    assert gcode.rstrip().endswith(f"; total layers count = {toolpath.layers}".encode())


def test_every_layer_is_marked_with_its_height() -> None:
    toolpath = box()
    text = toolpath.gcode.decode("ascii")
    assert text.count(";LAYER_CHANGE\n") == toolpath.layers
    heights = [float(z) for z in re.findall(r"^;Z:(\S+)$", text, flags=re.M)]
    assert heights[0] == 0.25
    assert heights[1:] == pytest.approx([0.25 + 0.2 * i for i in range(1, toolpath.layers)])


def test_the_time_estimate_is_longer_than_drawing_every_line_at_full_speed() -> None:
    toolpath = box()
    drawn_mm = sum(
        math.hypot(m.x1 - m.x0, m.y1 - m.y0) for m in extrusions(toolpath.gcode) if m.layer
    )
    # Accelerating at every corner costs time; heating and homing are not counted.
    assert drawn_mm / 50 < toolpath.estimated_time_s < 2 * drawn_mm / 50


def test_marlin_starts_by_heating_and_homing_and_ends_with_everything_off() -> None:
    lines = box().gcode.decode("ascii").splitlines()
    start = lines[: lines.index(";LAYER_CHANGE")]
    assert [line for line in start if line.split(" ")[0] in ("M190", "M109", "G28", "M82")] == [
        "M190 S60",
        "M109 S210",
        "G28",
        "M82",
    ]
    end = lines[lines.index(f";LAYER:{box().layers - 1}") :]
    assert {"M104 S0", "M140 S0", "M107", "M84"} <= set(end)


def test_the_part_cooling_fan_starts_on_the_second_layer() -> None:
    text = box().gcode.decode("ascii")
    assert "M106" not in text.split(";LAYER:1\n")[0]
    assert "M106 S255" in text.split(";LAYER:1\n")[1].split(";LAYER_CHANGE")[0]


def test_klipper_starts_with_its_print_start_macro_instead_of_marlin_heating() -> None:
    stl = box_stl(20, 20, 10)
    marlin = planned(stl, make_profile()).gcode.decode("ascii")
    klipper = planned(stl, make_profile(flavour="klipper")).gcode.decode("ascii")
    klipper_start = klipper.split(";LAYER_CHANGE")[0]
    assert "PRINT_START BED=60 EXTRUDER=210" in klipper_start
    assert "M190" not in klipper_start and "G28" not in klipper_start
    assert "PRINT_END" in klipper and "PRINT_END" not in marlin
    assert marlin.split(";LAYER_CHANGE")[0] != klipper_start
    # The moves themselves are the same.
    assert extrusions(marlin.encode()) == extrusions(klipper.encode())


def test_a_machine_name_cannot_break_out_of_its_comment() -> None:
    profile = make_profile(machine_model="MK4\nG28 X0")
    toolpath = planned(box_stl(20, 20, 10), profile)
    assert b"\nG28 X0" not in toolpath.gcode
    assert header_value(toolpath.gcode, "; printer_model =") == "MK4 G28 X0"


# --- refusals ---------------------------------------------------------------------------------


def test_a_part_taller_than_the_printer_reaches_is_rejected() -> None:
    with pytest.raises(Rejected, match="20.0 mm tall; the printer reaches 15 mm"):
        plan_toolpath(box_stl(10, 10, 20), make_profile(max_height_mm=15.0))


def test_a_part_wider_than_the_bed_is_rejected() -> None:
    with pytest.raises(Rejected, match="bigger than the 250 x 210 mm bed"):
        plan_toolpath(box_stl(260, 10, 5), make_profile())


def test_a_part_as_big_as_the_bed_prints_without_the_skirt_that_would_leave_it() -> None:
    toolpath = plan_toolpath(box_stl(249, 209, 0.5), make_profile())
    assert b";TYPE:Skirt/Brim" not in toolpath.gcode
    assert toolpath.layers == 2


@pytest.mark.parametrize(
    "stl",
    [
        b"",
        b"this is not an STL",
        bytes(range(256)) * 8,
        b"solid broken\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0\n",
        b"\0" * 80 + struct.pack("<I", 0),
    ],
    ids=["empty", "text", "binary-noise", "truncated-ascii", "no-triangles"],
)
def test_an_empty_or_garbled_stl_is_rejected(stl: bytes) -> None:
    with pytest.raises(Rejected):
        plan_toolpath(stl, make_profile())


def test_an_open_surface_with_no_closed_outline_is_rejected() -> None:
    sheet = trimesh.Trimesh(
        vertices=[(0, 0, 0), (10, 0, 0), (0, 0, 10), (10, 0, 10)], faces=[(0, 1, 2), (1, 3, 2)]
    )
    with pytest.raises(Rejected, match="no layer of the part has a closed outline"):
        plan_toolpath(stl_of(sheet), make_profile())


def test_a_part_thinner_than_a_quarter_line_is_rejected() -> None:
    with pytest.raises(Rejected, match="no wall of the part is wide enough"):
        plan_toolpath(box_stl(30, 0.1, 10), make_profile())


def test_a_nonsense_profile_is_a_programming_error_not_a_rejection() -> None:
    with pytest.raises(ValueError, match="unknown G-code flavour"):
        make_profile(flavour="reprap")
    with pytest.raises(ValueError, match="layer_height_mm must be positive"):
        make_profile(layer_height_mm=0)


# --- sections -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mesh",
    [
        trimesh.creation.icosphere(subdivisions=3, radius=12),
        trimesh.creation.torus(major_radius=15, minor_radius=4, major_sections=40),
        trimesh.creation.cylinder(radius=5, height=8, sections=24),
        trimesh.creation.box((10, 6, 4)),
    ],
    ids=["icosphere", "torus", "cylinder", "box"],
)
def test_all_planes_are_cut_in_one_pass_exactly_as_trimesh_cuts_them_one_by_one(
    mesh: trimesh.Trimesh,
) -> None:
    from production.toolpath.slicing import _sections

    mesh = mesh.copy()
    mesh.apply_translation(-mesh.bounds[0])
    top = float(mesh.bounds[1][2])
    # Planes between vertices, and on whole-millimetre heights: through the box's faces and
    # the cylinder's rims (trimesh's cases with a corner on the plane).
    heights = np.concatenate([np.arange(0.1, top, 0.2), np.arange(0.0, top + 1.0, 1.0)])
    expected, _, _ = trimesh.intersections.mesh_multiplane(
        mesh, plane_origin=[0.0, 0.0, 0.0], plane_normal=[0.0, 0.0, 1.0], heights=heights
    )
    found, _ = _sections(mesh, heights)
    inside = [segments for segments, h in zip(found, heights, strict=True) if 0.05 < h < top - 0.05]
    assert inside and all(len(segments) >= 3 for segments in inside)  # closed outlines
    assert len(found) == len(expected)
    for ours, theirs in zip(found, expected, strict=True):
        assert ours.shape == theirs.shape
        assert ours.tobytes() == theirs.tobytes()  # the same bits, in the same order


@pytest.mark.parametrize("sections", [64, 256])
def test_the_layers_of_a_straight_wall_are_one_region(sections: int) -> None:
    # A cylinder's facets are cut through their diagonals at other points on every layer; the
    # outline simplified from those cuts differed by up to SIMPLIFY_MM from layer to layer
    # (30 distinct regions of 30 layers at 256 facets), so each layer was planned anew.
    import shapely

    from production.toolpath.slicing import (
        SIMPLIFY_MM,
        SNAP_DECIMALS,
        _region,
        _sections,
        place_on_bed,
        slice_layers,
    )

    profile = make_profile(layer_height_mm=0.2, first_layer_height_mm=0.2)
    mesh = place_on_bed(trimesh.creation.cylinder(radius=8, height=6, sections=sections), profile)
    slices = slice_layers(mesh, profile)
    assert len(slices) == 30
    assert len({id(layer.region) for layer in slices}) == 1
    # ... the region of each cut, within the simplification's tolerance.
    middles = np.array([layer.z_mm - layer.height_mm / 2 for layer in slices])
    cuts, _ = _sections(mesh, middles)
    for cut, layer in zip(cuts, slices, strict=True):
        own = _region(np.round(cut[:, :, :2], SNAP_DECIMALS))
        assert shapely.hausdorff_distance(own, layer.region) <= SIMPLIFY_MM
        assert layer.region.area == pytest.approx(own.area, rel=1e-4)
