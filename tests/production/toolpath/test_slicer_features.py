"""Overhangs, brim, z-hop and gap fill of the builtin slicer, measured on its own output."""

import functools
import math
import re

import pytest
import shapely
import trimesh

from production.toolpath import FdmProfile, Toolpath, plan_toolpath, slicing
from production.toolpath.paths import Kind, LayerPlan, plan_layers
from production.toolpath.verify import verify_gcode
from tests.production.toolpath.gcode_reader import (
    BED_CENTRE,
    box_stl,
    extrusions,
    make_profile,
    stl_of,
    tube_stl,
    two_boxes_stl,
)

pytestmark = pytest.mark.cad  # slicing; no database

WIDTH = 0.4 * 1.125
FILAMENT_AREA = math.pi * (1.75 / 2) ** 2


def spacing(height: float) -> float:
    return WIDTH - height * (1 - math.pi / 4)


@functools.cache
def planned(stl: bytes, profile: FdmProfile) -> Toolpath:
    return plan_toolpath(stl, profile)


def t_shape_stl() -> bytes:
    """A 10 x 10 mm column 10 mm tall under a 30 x 10 x 2 mm slab: 10 mm of overhang on
    either side of the column, nothing under it."""
    column = trimesh.creation.box(extents=(10, 10, 10))
    column.apply_translation((0, 0, 5))
    slab = trimesh.creation.box(extents=(30, 10, 2))
    slab.apply_translation((0, 0, 11))
    both = trimesh.util.concatenate([column, slab])
    assert isinstance(both, trimesh.Trimesh)
    return stl_of(both)


@functools.cache
def t_shape_layers() -> tuple[list[slicing.Slice], list[LayerPlan]]:
    profile = make_profile()
    mesh = slicing.place_on_bed(slicing.load_mesh(t_shape_stl()), profile)
    slices = slicing.slice_layers(mesh, profile)
    return slices, plan_layers(slices, profile, start=(0.0, 0.0))


def kinds_of(layer: LayerPlan) -> dict[Kind, int]:
    counts: dict[Kind, int] = {}
    for path in layer.paths:
        counts[path.kind] = counts.get(path.kind, 0) + 1
    return counts


# --- an overhang ------------------------------------------------------------------------------


def test_an_overhang_widens_the_layer_regions_where_the_slab_begins() -> None:
    slices, _ = t_shape_layers()
    # Layer i's middle is at 0.15 + 0.2 i mm: layer 49 (9.95 mm) is the column's last,
    # layer 50 (10.15 mm) the slab's first; 60 layers reach 12 mm.
    assert len(slices) == 60
    assert [round(s.region.area, 1) for s in slices[48:52]] == [100.0, 100.0, 300.0, 300.0]
    assert slices[49].region.bounds == pytest.approx((120, 100, 130, 110))
    assert slices[50].region.bounds == pytest.approx((110, 100, 140, 110))


def test_every_layer_of_the_overhanging_part_has_two_perimeters() -> None:
    _, layers = t_shape_layers()
    for layer in layers:
        counts = kinds_of(layer)
        assert (counts[Kind.EXTERNAL_PERIMETER], counts[Kind.PERIMETER]) == (1, 1)


def test_the_first_layer_over_air_is_laid_as_a_bridge() -> None:
    _, layers = t_shape_layers()
    bridged = [i for i, layer in enumerate(layers) if Kind.BRIDGE in kinds_of(layer)]
    # The slab's first layer spans the air beside the column (and the column's sparse infill,
    # which holds up no more than air); layer 57 bridges the sparse infill under the top.
    assert bridged == [50, 57]
    lines = [shapely.LineString(p.points) for p in layers[50].paths if p.kind == Kind.BRIDGE]
    column = shapely.box(120, 100, 130, 110)
    # Two 10 x 10 mm wings less the perimeters around them, in threads 0.45 mm apart.
    over_air_mm2 = sum(line.difference(column).length for line in lines) * 0.45
    assert 0.7 * 200 < over_air_mm2 < 200


def test_a_bridge_thread_is_round_and_as_wide_as_the_nozzle() -> None:
    toolpath = planned(t_shape_stl(), make_profile())
    bridge = [m for m in extrusions(toolpath.gcode) if m.layer == 50 and m.kind == "Bridge infill"]
    length = sum(math.hypot(m.x1 - m.x0, m.y1 - m.y0) for m in bridge)
    volume = sum(m.e - m.e_before for m in bridge) * FILAMENT_AREA
    assert volume / length == pytest.approx(math.pi / 4 * 0.4**2, rel=0.01)


# --- brim -------------------------------------------------------------------------------------


def test_a_brim_rings_the_first_layer_from_the_part_outwards() -> None:
    toolpath = planned(box_stl(20, 20, 2), make_profile(brim_width_mm=3))
    part = shapely.box(115, 95, 135, 115)
    rings = [m for m in extrusions(toolpath.gcode) if m.kind == "Skirt/Brim"]
    assert {m.layer for m in rings} == {0}
    # Distances of the loops' straight sides from the part: 7 brim loops one 0.25 mm layer's
    # spacing apart, the innermost half a line out, then the skirt 3 mm beyond the brim.
    distances = [part.distance(shapely.LineString([(m.x0, m.y0), (m.x1, m.y1)])) for m in rings]
    loops = {(d - WIDTH / 2) / spacing(0.25) for d in distances if d < 3}
    assert {round(k) for k in loops} == set(range(7))
    assert all(abs(k - round(k)) < 0.02 for k in loops)
    assert min(d for d in distances if d >= 3) == pytest.approx(3 + 3 + WIDTH / 2, abs=0.01)
    verify_gcode(toolpath.gcode, stl=box_stl(20, 20, 2), profile=make_profile(brim_width_mm=3))


def test_no_brim_by_default() -> None:
    toolpath = planned(box_stl(20, 20, 2), make_profile())
    part = shapely.box(115, 95, 135, 115)
    rings = [m for m in extrusions(toolpath.gcode) if m.kind == "Skirt/Brim"]
    assert min(part.distance(shapely.Point(m.x1, m.y1)) for m in rings) > 3


# --- z-hop ------------------------------------------------------------------------------------


def moves_with_z(gcode: bytes) -> list[tuple[str, float, float, float, bool]]:
    """(command, x, y, z, extrudes) for every G0/G1 after the start sequence."""
    x = y = z = 0.0
    found = []
    started = False
    for line in gcode.decode("ascii").splitlines():
        started = started or line.startswith(";LAYER_CHANGE")
        if not line.startswith(("G0 ", "G1 ")):
            continue
        words = dict(re.findall(r"([XYZEF])(-?[\d.]+)", line))
        x, y, z = (float(words.get(k, v)) for k, v in (("X", x), ("Y", y), ("Z", z)))
        if started:
            found.append((line[:2], x, y, z, "E" in words and ("X" in words or "Y" in words)))
    return found


def test_z_hop_lifts_the_nozzle_for_travel_between_islands() -> None:
    stl = two_boxes_stl(10, 10, 1)  # left box x 110..120, right 130..140 on the bed
    layer_z = {0.25 + 0.2 * i for i in range(5)}
    hopped = moves_with_z(planned(stl, make_profile(z_hop_mm=0.4)).gcode)
    flat = moves_with_z(planned(stl, make_profile()).gcode)

    def across_the_gap(moves: list[tuple[str, float, float, float, bool]]) -> list[float]:
        # Travels that end on the other box than they started from.
        return [
            z
            for (_, x0, _, _, _), (cmd, x1, _, z, extrudes) in zip(moves, moves[1:], strict=False)
            if cmd == "G0" and not extrudes and (x0 - 125) * (x1 - 125) < 0
        ]

    assert len(across_the_gap(hopped)) == 5  # once per layer
    assert all(round(z - 0.4, 3) in {round(v, 3) for v in layer_z} for z in across_the_gap(hopped))
    assert all(round(z, 3) in {round(v, 3) for v in layer_z} for z in across_the_gap(flat))
    # Extrusion always happens back down at the layer's height.
    assert {round(z, 3) for _, _, _, z, e in hopped if e} == {round(v, 3) for v in layer_z}
    verify_gcode(
        planned(stl, make_profile(z_hop_mm=0.4)).gcode, stl=stl, profile=make_profile(z_hop_mm=0.4)
    )


def test_z_hop_costs_time_in_the_estimate() -> None:
    stl = two_boxes_stl(10, 10, 1)
    hopped = planned(stl, make_profile(z_hop_mm=0.4))
    flat = planned(stl, make_profile())
    assert hopped.estimated_time_s > flat.estimated_time_s
    assert hopped.filament_mm == flat.filament_mm


# --- gap fill ---------------------------------------------------------------------------------


def layer_volume(toolpath: Toolpath, layer: int, kind: str | None = None) -> float:
    return FILAMENT_AREA * sum(
        m.e - m.e_before
        for m in extrusions(toolpath.gcode)
        if m.layer == layer and (kind is None or m.kind == kind)
    )


def test_a_wall_too_thin_for_two_loops_gets_a_gap_fill_line_down_its_middle() -> None:
    # 1.2 mm: one loop (0.45 mm lines) leaves 0.39 mm between its sides, too little for a
    # second loop: one line of that width fills it.
    toolpath = planned(box_stl(30, 1.2, 2), make_profile())
    layer = 5  # 0.2 mm high
    kinds = {m.kind for m in extrusions(toolpath.gcode) if m.layer == layer}
    assert kinds == {"External perimeter", "Gap fill"}
    gap = [m for m in extrusions(toolpath.gcode) if m.layer == layer and m.kind == "Gap fill"]
    assert all(abs(m.y0 - BED_CENTRE[1]) < 1e-3 and abs(m.y1 - BED_CENTRE[1]) < 1e-3 for m in gap)
    # The loop's band (one spacing wide, its round side left out) starts half a line minus half
    # a spacing in from the outside; the gap line fills what is left between its two sides,
    # and runs down the middle of that strip, ending half its width short of the strip's ends
    # (its round end fills the rest).
    bulge = (WIDTH - spacing(0.2)) / 2
    gap_width = 1.2 - 2 * (bulge + spacing(0.2))
    length = sum(abs(m.x1 - m.x0) for m in gap)
    assert length == pytest.approx(30 - 2 * (bulge + spacing(0.2)) - gap_width, abs=0.01)
    assert layer_volume(toolpath, layer, "Gap fill") == pytest.approx(
        gap_width * length * 0.2, rel=0.05
    )
    # The wall is full: what the layer deposits is the wall's volume within a few percent.
    assert layer_volume(toolpath, layer) / (30 * 1.2 * 0.2) == pytest.approx(1, abs=0.05)


def test_without_gap_fill_the_thin_wall_keeps_its_gap() -> None:
    toolpath = planned(box_stl(30, 1.2, 2), make_profile(gap_fill=False))
    assert {m.kind for m in extrusions(toolpath.gcode) if m.layer == 5} == {"External perimeter"}
    assert layer_volume(toolpath, 5) / (30 * 1.2 * 0.2) == pytest.approx(0.7, abs=0.05)


def test_a_wall_narrower_than_one_line_is_one_line_as_wide_as_the_wall() -> None:
    toolpath = planned(box_stl(30, 0.3, 2), make_profile())
    moves = [m for m in extrusions(toolpath.gcode) if m.layer == 5]
    assert {m.kind for m in moves} == {"Gap fill"}
    # As wide as the wall at its widest: its round sides are the wall's two faces, so it lays
    # the material of a flat band one bulge narrower on either side, ending half a band short
    # of the wall's ends.
    assert ";WIDTH:0.3\n" in toolpath.gcode.decode()
    band = 0.3 - (WIDTH - spacing(0.2))
    assert layer_volume(toolpath, 5) == pytest.approx(band * (30 - band) * 0.2, rel=0.02)


def test_a_sliver_inside_the_perimeters_widens_them_instead_of_getting_a_loop() -> None:
    # Two loops from each side take 4 spacings of the wall and leave a 0.19 mm sliver, under
    # half a line: no loop of its own, the inner loop on either side widens into it.
    outer = 10.0
    inner = outer - (4 * spacing(0.2) + 0.19)
    stl = tube_stl(inner, outer, 2)
    toolpath = planned(stl, make_profile())
    moves = [m for m in extrusions(toolpath.gcode) if m.layer == 5]
    assert {m.kind for m in moves} == {"External perimeter", "Perimeter"}
    # Four loops and nothing else: the drawn length is theirs (trimesh's 32-gon tube, loops at
    # half a line and half a line + one spacing in from either side; the two widened loops
    # move towards each other by the same amount, so their total length stays). A gap-fill
    # loop down the sliver would add 25 %.
    sides = 32
    perimeter_of = 2 * sides * math.sin(math.pi / sides)  # per mm of circumradius
    apothem = math.cos(math.pi / sides)
    loops = [
        outer - (WIDTH / 2) / apothem,
        outer - (WIDTH / 2 + spacing(0.2)) / apothem,
        inner + (WIDTH / 2) / apothem,
        inner + (WIDTH / 2 + spacing(0.2)) / apothem,
    ]
    drawn = sum(math.hypot(m.x1 - m.x0, m.y1 - m.y0) for m in moves)
    assert drawn == pytest.approx(perimeter_of * sum(loops), rel=0.01)
    # The widened loops carry the sliver's material: the layer is full (measured 0.976, the
    # same as with the gap-fill loop).
    wall = trimesh.load_mesh(trimesh.util.wrap_as_stream(stl), file_type="stl").volume / 2
    assert layer_volume(toolpath, 5) / (wall * 0.2) == pytest.approx(1, abs=0.03)


def test_profile_settings_cannot_be_negative() -> None:
    for setting in ("z_hop_mm", "brim_width_mm", "solid_infill_below_area_mm2", "jerk_mm_s"):
        with pytest.raises(ValueError, match=setting):
            make_profile(**{setting: -1})


def test_small_infill_regions_print_solid_below_the_area_threshold() -> None:
    # Inside two perimeters a 12 mm box leaves 10.5 x 10.5 mm of infill (110 mm²): sparse;
    # a 9 mm box 7.5 x 7.5 mm (57 mm²), under the 70 mm² default: solid.
    def kinds(size: float, **settings: object) -> set[str]:
        toolpath = planned(box_stl(size, size, 4), make_profile(**settings))
        return {m.kind for m in extrusions(toolpath.gcode) if m.layer == 10}

    assert "Internal infill" in kinds(12)
    assert "Internal infill" not in kinds(9)
    assert "Solid infill" in kinds(9)
    assert "Internal infill" in kinds(9, solid_infill_below_area_mm2=0)
