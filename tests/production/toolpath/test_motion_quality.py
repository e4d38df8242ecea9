"""Minimum layer time, seam placement and the brim a tipping risk asks for, measured on the
builtin slicer's own G-code (no database)."""

import re
import tempfile
from pathlib import Path

import cadquery as cq
import pytest
import trimesh

from production.pipeline.steps import AUTO_BRIM_MM, with_brim_if_at_risk
from production.pipeline.validation import MachineLimits, dfm_report
from production.toolpath import gcode, motion, plan_toolpath
from production.toolpath.gcode import machine_limits
from production.toolpath.verify import verify_gcode
from tests.production.toolpath.gcode_reader import (
    box_stl,
    extrusions,
    make_profile,
    stl_of,
    tube_stl,
)

pytestmark = pytest.mark.cad

FEED = re.compile(r"F(\d+)")


def layer_times(gcode: bytes, profile) -> dict[int, float]:
    """Seconds per layer: the motion estimate of its moves plus its cooling pause."""
    limits = machine_limits(profile)
    times: dict[int, float] = {}
    layer, x, y, z, e, feed = None, 0.0, 0.0, 0.0, 0.0, 0.0
    moves: list = []

    def close() -> None:
        if layer is not None:
            times[layer] = times.get(layer, 0.0) + motion.estimate_s(moves, limits)

    for line in gcode.decode("ascii").splitlines():
        if line.startswith(";LAYER:"):
            close()
            layer, moves = int(line.removeprefix(";LAYER:")), []
        elif line.startswith("G92"):
            e = 0.0
        elif line.startswith("G4 ") and layer is not None:
            times[layer] = times.get(layer, 0.0) + int(line.split()[1][1:]) / 1000
        elif line.startswith(("G0 ", "G1 ")):
            words = dict(re.findall(r"([XYZEF])(-?[\d.]+)", line))
            feed = float(words.get("F", feed * 60)) / 60
            nx, ny, nz, ne = (
                float(words.get(k, v)) for k, v in zip("XYZE", (x, y, z, e), strict=False)
            )
            moves.append([[nx - x, ny - y, nz - z, ne - e, feed]])
            x, y, z, e = nx, ny, nz, ne
    close()
    return times


def test_a_thin_tube_takes_at_least_the_minimum_layer_time_on_every_layer():
    profile = make_profile(min_layer_time_s=10, min_print_speed_mm_s=10)
    stl = tube_stl(4, 6, 6)  # a 12 mm tube: about 3 s a layer at full speed
    toolpath = plan_toolpath(stl, profile)
    times = layer_times(toolpath.gcode, profile)
    later = [t for layer, t in times.items() if layer > 0]
    assert min(later) == pytest.approx(10, abs=0.6)
    text = toolpath.gcode.decode()
    assert "G4 P" in text  # slowed to 10 mm/s it is still quicker: the nozzle waits
    assert max(int(f) for f in FEED.findall(text.split(";LAYER:1\n")[1].split(";LAYER:2")[0])) <= (
        profile.travel_speed_mm_s * 60
    )
    assert toolpath.estimated_time_s >= 10 * len(later)
    verify_gcode(toolpath.gcode, stl=stl, profile=profile)


def test_a_big_layer_is_not_slowed():
    profile = make_profile()
    quick = plan_toolpath(box_stl(40, 40, 1), profile)
    plain = plan_toolpath(box_stl(40, 40, 1), make_profile(min_layer_time_s=0))
    assert "G4 P" not in quick.gcode.decode()
    assert quick.estimated_time_s == plain.estimated_time_s


def test_a_slowed_layer_prints_slower_before_it_waits():
    profile = make_profile(min_layer_time_s=10, min_print_speed_mm_s=5)
    toolpath = plan_toolpath(box_stl(12, 12, 2), profile)  # ~6 s a layer at 50 mm/s
    text = toolpath.gcode.decode()
    layer_2 = text.split(";LAYER:2\n")[1].split(";LAYER:3")[0]
    printing = [
        int(f)
        for line in layer_2.splitlines()
        if line.startswith("G1 X")
        for f in FEED.findall(line)
    ]
    assert printing and max(printing) < 50 * 60
    assert "G4 P" not in layer_2


@pytest.mark.parametrize(
    "slowing",
    [
        {"min_print_speed_mm_s": 5},  # slowed to somewhere between
        {"min_print_speed_mm_s": 10},  # to the minimum, the speed Z moves at
        {"min_print_speed_mm_s": 10, "z_hop_mm": 0.4},  # ... and the travels hop
        {"min_print_speed_mm_s": 35},  # to the retraction's speed
    ],
)
def test_a_slowed_layer_is_the_layer_written_again_slower(slowing, monkeypatch):
    # The writer changes the feeds of the layer it wrote rather than writing it again
    # (gcode._Writer._slowed); written again, every byte is the same.
    profile = make_profile(min_layer_time_s=10, **slowing)
    stl = tube_stl(4, 6, 3)
    shortcut = plan_toolpath(stl, profile)
    monkeypatch.setattr(gcode._Writer, "_slowed", lambda *_: None)
    written_again = plan_toolpath(stl, profile)
    assert shortcut.gcode.count(b"G4 P") >= 10  # slowed, then waiting, on every layer
    assert shortcut == written_again


def test_a_repeated_slowed_layer_is_copied_as_written(monkeypatch):
    # A tube's layers repeat: the writer copies its record of the first, already slowed down
    # (and its wait), to the others (gcode._Writer._paths). With no record ever matching,
    # every layer is written, slowed and timed anew: the same bytes.
    profile = make_profile(min_layer_time_s=10, min_print_speed_mm_s=5)
    stl = tube_stl(4, 6, 3)
    copied = plan_toolpath(stl, profile)
    monkeypatch.setattr(gcode._Writer, "_written_key", lambda *_: (object(),))
    written = plan_toolpath(stl, profile)
    assert copied.gcode.count(b"G4 P") >= 10  # slowed, then waiting, on every layer
    assert copied == written


def starts(gcode: bytes, kind: str = "External perimeter") -> list[tuple[int, float, float]]:
    """Where each loop of that kind starts, per layer (the first extrusion after a travel)."""
    found, previous = [], None
    for move in extrusions(gcode):
        if move.kind == kind and move.layer and (previous is None or previous.kind != kind):
            found.append((move.layer, round(move.x0, 2), round(move.y0, 2)))
        previous = move
    return found


def test_an_aligned_seam_starts_every_layer_at_the_same_rear_point():
    stl = tube_stl(6, 10, 4)
    seams = starts(plan_toolpath(stl, make_profile(seam="aligned")).gcode)
    outer = [(x, y) for _, x, y in seams if y > 105 + 8]  # the outer wall's starts, at the back
    assert len(outer) >= 10 and len(set(outer)) == 1


def l_prism_stl() -> bytes:
    """An L, 20 x 20 mm with 8 mm legs, 3 mm high: one concave corner, at (8, 8)."""
    outline = [(0, 0), (20, 0), (20, 8), (8, 8), (8, 20), (0, 20)]
    solid = cq.Workplane("XY").polyline(outline).close().extrude(3)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "l.stl"
        cq.exporters.export(solid, str(path))
        return path.read_bytes()


def test_a_corner_seam_hides_in_the_inner_corner_of_an_l():
    stl = l_prism_stl()
    toolpath = plan_toolpath(stl, make_profile(seam="corner"))
    seams = starts(toolpath.gcode)
    # Centred on the bed (the L's box centre at 125, 105): its inner corner at (123, 103),
    # the outer loop's centre line half a line width inside the material, so down and left.
    assert seams and all(abs(x - 122.78) < 0.05 and abs(y - 102.78) < 0.05 for _, x, y in seams)


def test_a_seam_the_profile_does_not_know_is_a_programming_error():
    with pytest.raises(ValueError, match="seam"):
        make_profile(seam="somewhere")


MK4 = MachineLimits("mk4", "fdm", (250.0, 210.0, 220.0), 0.4, "Prusa MK4")


def test_a_part_that_may_tip_gets_a_brim():
    ball = stl_of(trimesh.creation.icosphere(subdivisions=3, radius=10))
    report = dfm_report(ball, machines=[MK4])  # a ball touches the bed in a point, any way up
    assert any(c.name == "first_layer" and c.status == "warn" for c in report.checks)
    profile = with_brim_if_at_risk(make_profile(), report)
    assert profile.brim_width_mm == AUTO_BRIM_MM
    steady = dfm_report(box_stl(30, 30, 5), machines=[MK4])
    assert with_brim_if_at_risk(make_profile(), steady).brim_width_mm == 0
    assert with_brim_if_at_risk(make_profile(brim_width_mm=2), report).brim_width_mm == 2
