"""cnc_verify.py: a milling program passes only when it makes its part, measured on the z-map.

The programs are written by hand here, each with a known result: walls at a known offset,
holes of a known diameter. The parts are CadQuery solids exported to STL, as the planner's
parts are; rs274 (LinuxCNC's interpreter) reads the same programs.
"""

import functools
import io
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cadquery as cq
import numpy as np
import pytest
from PIL import Image

from microfactory.errors import Rejected
from production.toolpath.cnc_render import render_simulation
from production.toolpath.cnc_verify import (
    CncCheck,
    Envelope,
    check_program,
    part_height_map,
    read_segments,
    simulate_program,
    verify_program,
)
from production.toolpath.program import Stock, ToolUse
from production.toolpath.rs274 import rs274_errors
from production.toolpath.verify import PASS

pytestmark = pytest.mark.cad  # CadQuery parts and numpy simulation; no database

RES = 0.2
END_MILL = ToolUse(1, "6 mm flat end mill", "flat_end_mill", 6.0, ("pocket", "profile"), 12000)
DRILL = ToolUse(2, "5 mm drill", "drill", 5.0, ("drill",), 3000)
TOOLS = (END_MILL, DRILL)
TRAVEL = (300.0, 200.0, 80.0)


def stl_of(solid: cq.Workplane) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "part.stl"
        cq.exporters.export(solid, str(path), tolerance=0.01, angularTolerance=0.1)
        return path.read_bytes()


@functools.cache
def pocket_part() -> bytes:
    """A 50 x 30 x 6 plate with a 20 x 10 pocket 2 mm deep, its corner at (20, 15)."""
    plate = cq.Workplane("XY").box(50, 30, 6, centered=False)
    pocket = cq.Workplane("XY").box(20, 10, 2, centered=False).translate((20, 15, 4))
    return stl_of(plate.cut(pocket))


@functools.cache
def plain_part() -> bytes:
    return stl_of(cq.Workplane("XY").box(50, 30, 6, centered=False))


@functools.cache
def holes_part() -> bytes:
    """A 50 x 30 x 6 plate with 5 mm holes at (15, 15) and (35, 15) and a 10 mm one at
    (25, 15)."""
    plate = cq.Workplane("XY").box(50, 30, 6, centered=False)
    for x, diameter in ((15, 5.0), (35, 5.0), (25, 10.0)):
        plate = plate.cut(cq.Workplane("XY").circle(diameter / 2).extrude(6).translate((x, 15, 0)))
    return stl_of(plate)


def stock(x: float = 50, y: float = 30, margin: float = 0.0) -> Stock:
    return Stock(x_mm=x, y_mm=y, thickness_mm=6.0, material="6061", margin_mm=margin)


HEADER = """(hand-written test program)
G21 G90 G17
G54
T1 M6
S12000 M3
G0 Z5
"""
FOOTER = """G0 Z10
M5
M30
"""


def pocket_program(*, floor: float = -2.0, right: float = 37.0) -> str:
    """Clears the pocket with the 6 mm end mill: zig-zag at y 18/20/22 between x 23 and
    `right`, then a finishing loop at the tool's radius from the walls (x 23..37, y 18..22)."""
    return (
        HEADER
        + f"""G0 X23 Y18
G1 Z{floor:g} F300
G1 X{right:g} F800
G1 Y20
G1 X23
G1 Y22
G1 X37
G1 Y18
G1 X23
G1 Y22
G1 X37
G0 Z5
"""
        + FOOTER
    )


def profile_program(*, tabs: bool = True) -> str:
    """Cuts a 50 x 30 part out of 60 x 40 stock (margin 5): the path runs 3 mm outside the
    outline, with arcs around the corners, in three step-downs to 0.5 mm below the stock;
    the last pass rises to Z-5 over four 10 mm stretches, leaving 4 mm tabs 1 mm high."""
    passes = []
    for depth in (-2.0, -4.0, -6.5):
        lift = tabs and depth == -6.5
        bottom_side = "G1 X25\nG1 Z-5\nG1 X35\nG1 Z-6.5\nG1 X55\n" if lift else "G1 X55\n"
        top_side = "G1 X35\nG1 Z-5\nG1 X25\nG1 Z-6.5\nG1 X5\n" if lift else "G1 X5\n"
        left_side = "G1 Y25\nG1 Z-5\nG1 Y15\nG1 Z-6.5\nG1 Y5\n" if lift else "G1 Y5\n"
        right_side = "G1 Y15\nG1 Z-5\nG1 Y25\nG1 Z-6.5\nG1 Y35\n" if lift else "G1 Y35\n"
        passes.append(
            f"G1 Z{depth:g} F300\n"
            + bottom_side
            + "G3 X58 Y5 I0 J3 F800\n"
            + right_side
            + "G3 X55 Y38 I-3 J0\n"
            + top_side
            + "G3 X2 Y35 I0 J-3\n"
            + left_side
            + "G3 X5 Y2 I3 J0\n"
        )
    return HEADER + "G0 X5 Y2\nG0 Z1\nF800\n" + "".join(passes) + FOOTER


DRILL_PROGRAM = """(drilling: G81 twice, modal, then G83 pecking the same holes again)
(the 5 mm drill's 118 deg point is 1.5 mm long: at Z-8 its full diameter is 0.5 mm through)
G21 G90 G17
T2 M6
S3000 M3
G0 Z10
G99 G81 X15 Y15 Z-8 R2 F120
X35
G80
G0 Z10
G98 G83 X15 Y15 Z-8 R2 Q2 F120
G80
G0 Z10
M5
M30
"""

HELICAL_PROGRAM = (
    HEADER
    + """(a 10 mm hole at X25 Y15 with the 6 mm end mill: a helix of radius 2 mm, 1 mm a turn)
G0 X27 Y15
G0 Z1
G1 Z0 F300
G2 X27 Y15 I-2 J0 Z-2 P2 F600
G2 X27 Y15 I-2 J0 Z-4 P2
G2 X27 Y15 I-2 J0 Z-6.5 P3
G2 X27 Y15 I-2 J0
G1 X25 Y15
G0 Z5
"""
    + FOOTER
)


def run(
    program: str,
    stl: bytes,
    the_stock: Stock | None = None,
    travel: tuple[float, float, float] = TRAVEL,
    **options: object,
) -> CncCheck:
    used = the_stock or stock()
    return check_program(
        program.encode(),
        stl=stl,
        stock=used,
        tools=TOOLS,
        envelope=Envelope.for_travel(travel, used),
        resolution_mm=RES,
        **options,  # type: ignore[arg-type]
    )


def failed(report: CncCheck) -> set[str]:
    return {check.name for check in report.failures}


def through_span(zmap: np.ndarray, row_y: float, floor: float, below: float) -> list[float]:
    """Centres (x, mm) of the cells in the row at `row_y` cut to `below` or deeper."""
    row = zmap[int(row_y / RES)]
    return [(i + 0.5) * RES for i in np.flatnonzero(row <= below + 1e-9)]


# --- the part's height map ------------------------------------------------------------------


def test_the_parts_height_map_has_its_pocket_floor_where_the_part_has_it() -> None:
    part = part_height_map(pocket_part(), stock=stock(), resolution_mm=RES)
    assert part.shape == (150, 250)
    assert part[100, 150] == pytest.approx(-2.0)  # (30, 20): in the pocket
    assert part[25, 25] == pytest.approx(0.0)  # (5, 5): the top
    floor_cells = np.flatnonzero(part[100] < -1.0)
    assert (floor_cells[0] + 0.5) * RES == pytest.approx(20.1)
    assert (floor_cells[-1] + 0.5) * RES == pytest.approx(39.9)


def test_a_part_is_placed_at_the_stocks_margin_with_its_bottom_on_the_stocks() -> None:
    part = part_height_map(plain_part(), stock=stock(60, 40, margin=5), resolution_mm=RES)
    assert part[100, 150] == pytest.approx(0.0)  # (30, 20): inside
    assert part[5, 5] == pytest.approx(-6.0)  # (1, 1): the margin, no part
    solid = np.flatnonzero(part[100] > -6.0)
    assert ((solid[0] + 0.5) * RES, (solid[-1] + 0.5) * RES) == (
        pytest.approx(5.1),
        pytest.approx(54.9),
    )


# --- hand-written programs that make their part -------------------------------------------


def test_a_pocket_is_cleared_to_its_walls_and_floor() -> None:
    report = run(pocket_program(), pocket_part())
    assert {check.status for check in report.checks} == {PASS}, report.failures
    zmap = report.simulation.zmap
    cut = through_span(zmap, 20.1, -6.0, below=-2.0 + 0.01)
    # The tool's centre runs 23..37, its radius 3: walls at 20 and 40, within a cell.
    assert abs(cut[0] - 20.0) <= RES and abs(cut[-1] - 40.0) <= RES
    column = zmap[:, int(30.0 / RES)]
    rows = np.flatnonzero(column <= -2.0 + 0.01)
    assert abs((rows[0] + 0.5) * RES - 15.0) <= RES
    assert abs((rows[-1] + 0.5) * RES - 25.0) <= RES
    assert float(zmap.min()) == pytest.approx(-2.0)
    assert report.max_gouge_mm == 0.0 and report.max_remaining_mm <= 0.1
    # 20 x 10 x 2 mm less the four corners' fillets a 3 mm tool leaves: (1 - pi/4) 9 mm² each.
    assert report.removed_mm3 == pytest.approx((200 - 4 * (1 - np.pi / 4) * 9) * 2, rel=0.01)


def test_a_profile_with_tabs_cuts_the_part_out_and_leaves_it_held() -> None:
    the_stock = stock(60, 40, margin=5)
    report = run(profile_program(), plain_part(), the_stock)
    assert {check.status for check in report.checks} == {PASS}, report.failures
    assert report.part_held and report.tabs == 4
    assert 0.75 <= report.band_cleared < 1.0
    # 4 mm of material on the path, 10 mm at the slot's edge (the tool rises over 10 mm)
    assert 4.0 < report.longest_tab_mm < 10.0
    zmap = report.simulation.zmap
    # At y = 10 (no tab): cut through from the stock's edge to the outline at x = 5, and
    # from x = 55 to the stock's edge; the part between stands at its full height.
    through = through_span(zmap, 10.1, -6.0, below=-6.0)
    assert abs(max(x for x in through if x < 30) - 5.0) <= RES
    assert abs(min(x for x in through if x > 30) - 55.0) <= RES
    assert zmap[int(10 / RES), int(30 / RES)] == 0.0
    assert zmap[int(20 / RES), int(2 / RES)] == pytest.approx(-5.0)  # the left side's tab
    # A tab: at x = 30 the slot below the part (y 0..5) keeps 1 mm of material.
    assert zmap[int(3.0 / RES), int(30.0 / RES)] == pytest.approx(-5.0)
    # the corners are arcs: the outline's corner at (55, 35) is reached, not cut.
    assert zmap[int(35.3 / RES), int(55.3 / RES)] == -6.0
    assert report.max_gouge_mm == 0.0


def test_a_drill_short_of_its_point_length_leaves_a_cone_in_the_hole() -> None:
    shallow = DRILL_PROGRAM.replace("Z-8", "Z-6.5")
    report = run(shallow, holes_part())
    zmap = report.simulation.zmap
    # the tip at -6.5, the cone rising 0.6 mm per mm: through only within 0.83 mm of the axis
    row = [x for x in through_span(zmap, 15.1, -6.0, below=-6.0) if abs(x - 15) < 4]
    assert abs((row[-1] - row[0] + RES) - 2 * 0.5 / 0.6) <= 2 * RES
    assert "remaining stock" in failed(report)


def test_drilling_cycles_make_through_holes_of_the_drills_diameter() -> None:
    report = run(DRILL_PROGRAM, holes_part(), remaining_tolerance_mm=0.1)
    # The 10 mm hole in the part is not drilled here: that is remaining stock, nothing else.
    assert failed(report) == {"remaining stock"}
    zmap = report.simulation.zmap
    for centre in (15.0, 35.0):
        row = [x for x in through_span(zmap, 15.1, -6.0, below=-6.0) if abs(x - centre) < 4]
        assert abs((row[-1] - row[0] + RES) - 5.0) <= RES + 1e-9
    segments = read_segments(DRILL_PROGRAM.encode())
    feeds = [s for s in segments if not s.rapid]
    assert [(s.end[0], s.end[2]) for s in feeds] == [(15, -8), (35, -8), (15, -8)]
    # G99 retracts to R (2), G98 to where the cycle began (10).
    assert [s.end[2] for s in segments if s.rapid and s.start[2] == -8] == [2.0, 2.0, 10.0]


def test_drilling_and_a_helix_make_every_hole_and_pass() -> None:
    both = DRILL_PROGRAM.replace("M5\nM30\n", "") + HELICAL_PROGRAM
    report = run(both, holes_part())
    assert {check.status for check in report.checks} == {PASS}, report.failures


def test_a_helical_hole_is_the_helix_diameter_plus_the_tool() -> None:
    report = run(HELICAL_PROGRAM, holes_part())
    zmap = report.simulation.zmap
    row = [x for x in through_span(zmap, 15.1, -6.0, below=-6.0) if abs(x - 25) < 7]
    assert abs((row[-1] - row[0] + RES) - 10.0) <= RES + 1e-9
    assert report.lowest_z_mm == -6.5
    assert report.max_gouge_mm == 0.0
    assert "gouge" not in failed(report) and "spindle and feed" not in failed(report)
    # a helix turn is chords within 0.01 mm of the arc: 2 mm radius, many pieces per turn
    helix = [s for s in read_segments(HELICAL_PROGRAM.encode()) if s.line == 11]
    assert len(helix) >= 2 * 20
    assert helix[-1].end == (27.0, 15.0, -2.0)


# --- programs that do not --------------------------------------------------------------------


def test_a_pass_one_millimetre_into_the_pocket_wall_is_a_gouge_where_it_is() -> None:
    report = run(pocket_program(right=38.0), pocket_part())
    assert failed(report) == {"gouge"}
    assert report.max_gouge_mm == pytest.approx(2.0)
    gouge = report.checks[[c.name for c in report.checks].index("gouge")]
    assert "X40." in gouge.message and "2.000 mm deep" in gouge.message
    with pytest.raises(Rejected, match="gouge|cut 2.000 mm deep"):
        verify_program(
            pocket_program(right=38.0).encode(),
            stl=pocket_part(),
            stock=stock(),
            tools=TOOLS,
            envelope=Envelope.for_travel(TRAVEL, stock()),
        )


def test_a_floor_cut_too_deep_is_a_gouge_and_too_shallow_is_remaining_stock() -> None:
    deep = run(pocket_program(floor=-2.5), pocket_part())
    assert failed(deep) == {"gouge"} and deep.max_gouge_mm == pytest.approx(0.5)
    shallow = run(pocket_program(floor=-1.5), pocket_part())
    assert failed(shallow) == {"remaining stock"}
    assert shallow.max_remaining_mm == pytest.approx(0.5)
    within = run(pocket_program(floor=-1.95), pocket_part())
    assert failed(within) == set()


def test_a_profile_without_tabs_cuts_the_part_free() -> None:
    report = run(profile_program(tabs=False), plain_part(), stock(60, 40, margin=5))
    assert failed(report) == {"tabs"}
    assert not report.part_held and report.band_cleared == 1.0
    assert "cut free" in report.failures[0].message
    allowed = run(
        profile_program(tabs=False), plain_part(), stock(60, 40, margin=5), require_tabs=False
    )
    assert failed(allowed) == set()


def test_a_profile_never_cut_through_leaves_the_band_as_remaining_stock() -> None:
    shallow = profile_program(tabs=False).replace("Z-6.5", "Z-4")
    report = run(shallow, plain_part(), stock(60, 40, margin=5))
    assert failed(report) == {"remaining stock"}
    assert report.band_cleared == 0.0 and report.part_held
    assert report.longest_tab_mm == pytest.approx(2 * (50 + 30) + 2 * np.pi * 3.2 / 2, rel=0.1)
    assert "not cut through for" in report.failures[0].message


def test_a_move_outside_the_machines_travel_fails() -> None:
    program = pocket_program().replace("G0 Z10\nM5", "G0 Z10\nG0 X320 Y10\nM5")
    report = run(program, pocket_part())
    assert failed(report) == {"machine travel"}
    assert "X320.000" in report.failures[0].message


def test_cuts_outside_the_stock_and_below_its_bottom_fail() -> None:
    wide = pocket_program().replace("G0 Z10\nM5", "G1 Z2\nG1 X60 Y10\nG0 Z10\nM5")
    assert "stock" in failed(run(wide, pocket_part()))
    deep = pocket_program().replace("G0 Z10\nM5", "G0 X-10 Y-10\nG1 Z-8\nG0 Z10\nM5")
    report = run(deep, pocket_part())
    assert "stock" in failed(report)
    assert "below the stock's bottom" in report.checks[5].message


def test_a_rapid_through_material_fails_and_a_rapid_into_a_cleared_pocket_does_not() -> None:
    crash = pocket_program().replace("G0 Z10\nM5", "G0 X5 Y5\nG0 Z-1\nG0 Z10\nM5")
    report = run(crash, pocket_part())
    assert failed(report) >= {"rapids"}
    assert "1.00 mm of material" in report.checks[6].message
    inside = pocket_program().replace("G0 Z10\nM5", "G0 X30 Y20\nG0 Z-1.5\nG0 Z10\nM5")
    assert failed(run(inside, pocket_part())) == set()


def test_cutting_with_the_spindle_stopped_or_an_unknown_tool_fails() -> None:
    stopped = pocket_program().replace("S12000 M3", "S12000")
    assert failed(run(stopped, pocket_part())) == {"spindle and feed"}
    unknown = pocket_program().replace("T1 M6", "T9 M6")
    report = run(unknown, pocket_part())
    assert failed(report) == {"tools", "remaining stock"}  # T9 has no size: nothing is cut


def test_commands_we_cannot_simulate_are_named() -> None:
    program = pocket_program().replace("G54\n", "G54 G41 D1\nG18\n")
    report = run(program, pocket_part())
    assert failed(report) == {"commands"}
    assert "G41" in report.failures[0].message and "(and 1 more)" in report.failures[0].message
    garbled = pocket_program().replace("G1 Y20", "G1 Y2O")
    assert "numbers" in failed(run(garbled, pocket_part()))


def test_inches_and_incremental_moves_are_read_as_millimetres_in_place() -> None:
    metric = read_segments(b"G21 G90\nT1 M6\nM3\nG1 X25.4 Y0 Z-1 F100\nG91\nG1 X10 Y5\n")
    inches = read_segments(b"G20 G90\nT1 M6\nM3\nG1 X1 Y0 Z-0.03937 F4\nG91\nG1 X0.3937 Y0.19685\n")
    ends = [(round(s.end[0], 2), round(s.end[1], 2)) for s in metric]
    assert ends == [(25.4, 0.0), (35.4, 5.0)]
    assert [(round(s.end[0], 2), round(s.end[1], 2)) for s in inches] == ends


def test_r_format_arcs_go_the_short_or_the_long_way() -> None:
    short = read_segments(b"G21 G90\nG0 X0 Y0 Z0\nG2 X10 Y0 R5 F100\n")
    long = read_segments(b"G21 G90\nG0 X0 Y0 Z0\nG3 X10 Y0 R-5 F100\n")
    # a clockwise half circle from (0,0) to (10,0) of radius 5 passes over (5, 5)
    assert max(s.end[1] for s in short) == pytest.approx(5.0, abs=0.01)
    assert min(s.end[1] for s in short[1:]) >= -1e-9
    assert min(s.end[1] for s in long) == pytest.approx(-5.0, abs=0.01)


def test_the_simulation_is_finer_at_a_finer_resolution_and_the_same_removal() -> None:
    coarse = simulate_program(
        pocket_program().encode(), stock=stock(), tools=TOOLS, resolution_mm=0.5
    )
    fine = simulate_program(
        pocket_program().encode(), stock=stock(), tools=TOOLS, resolution_mm=0.1
    )
    assert coarse.zmap.shape == (60, 100) and fine.zmap.shape == (300, 500)
    removed = [float(-s.zmap.sum()) * s.resolution_mm**2 for s in (coarse, fine)]
    assert removed[0] == pytest.approx(removed[1], rel=0.05)


def test_the_report_is_json() -> None:
    report = run(pocket_program(), pocket_part())
    data = report.to_json()
    assert "simulation" not in data and data["grid"] == (250, 150)
    assert {check["name"] for check in data["checks"]} >= {"gouge", "tabs", "remaining stock"}


# --- the render --------------------------------------------------------------------------------


def test_the_render_shows_the_top_white_the_floor_grey_and_the_slot_black() -> None:
    report = run(profile_program(), plain_part(), stock(60, 40, margin=5))
    png = render_simulation(report.simulation)
    assert png == render_simulation(report.simulation)
    image = Image.open(io.BytesIO(png))
    assert image.mode == "L" and image.size == (800, 533)
    scale = 800 / 300

    def grey(x: float, y: float) -> int:
        value = image.getpixel((int(x / RES * scale), int((40 - y) / RES * scale)))
        assert isinstance(value, int)
        return value

    assert grey(30, 20) == 255  # the part's top
    assert grey(30, 2) < 255 and grey(30, 2) > 60  # a tab: material 1 mm high
    assert grey(20, 2) == 0  # the slot, through


# --- LinuxCNC's interpreter ------------------------------------------------------------------


@pytest.mark.parametrize(
    "program",
    [pocket_program(), profile_program(), DRILL_PROGRAM, HELICAL_PROGRAM],
    ids=["pocket", "profile", "drilling", "helix"],
)
def test_rs274_accepts_the_hand_written_programs(program: str) -> None:
    assert rs274_errors(program.encode(), tools=TOOLS) == ()


def test_rs274_reports_the_error_and_the_block_of_a_bad_program() -> None:
    bad = pocket_program().replace("G1 Y20", "G2 X40 Y20 I0 J0")
    (error,) = rs274_errors(bad.encode(), tools=TOOLS)
    assert "arc" in error.lower() and "G2 X40 Y20 I0 J0" in error


def test_rs274_refuses_a_tool_missing_from_the_table_and_a_program_with_no_end() -> None:
    (error,) = rs274_errors(pocket_program().encode(), tools=(DRILL,))
    assert "tool 1" in error
    assert rs274_errors(pocket_program().encode()) == ()  # the table from the program's T words
    (unended,) = rs274_errors(pocket_program().replace("M30\n", "").encode(), tools=TOOLS)
    assert "program end" in unended


def test_rs274_runs_at_the_same_time_keep_their_own_tool_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rs274 maps its tool table into $HOME/.tool.mmap: with one HOME, a run read another's
    table (a missing tool for a program whose tools were all given) or died of SIGBUS."""
    monkeypatch.setenv("HOME", str(tmp_path))
    program = pocket_program().encode()
    tables = [TOOLS, (DRILL,)] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(pool.map(lambda tools: rs274_errors(program, tools=tools), tables))
    assert verdicts[0::2] == [()] * 8
    assert all(len(errors) == 1 and "tool 1" in errors[0] for errors in verdicts[1::2])
    assert list(tmp_path.iterdir()) == []  # nothing of it left in the caller's HOME


def _interpreter_killed_on_its_first_runs(folder: Path, killed_runs: int) -> str:
    """A stand-in interpreter (a real process) killed by SIGBUS on its first `killed_runs`
    runs, then handing over to rs274 itself, counting its runs in `folder`."""
    script = folder / "rs274-crashing"
    script.write_text(
        "#!/bin/sh\n"
        f'echo run >> "{folder}/runs"\n'
        f'[ "$(wc -l < "{folder}/runs")" -le {killed_runs} ] && kill -BUS $$\n'
        'exec rs274 "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


def test_an_interpreter_killed_by_a_signal_is_run_again_not_taken_as_a_verdict(
    tmp_path: Path,
) -> None:
    from production.toolpath.rs274 import ATTEMPTS, Rs274Crashed

    (tmp_path / "once").mkdir()
    once = _interpreter_killed_on_its_first_runs(tmp_path / "once", 1)
    assert rs274_errors(pocket_program().encode(), tools=TOOLS, binary=once) == ()
    assert len((tmp_path / "once" / "runs").read_text().split()) == 2

    (tmp_path / "always").mkdir()
    always = _interpreter_killed_on_its_first_runs(tmp_path / "always", 99)
    with pytest.raises(Rs274Crashed, match="signal 7"):
        rs274_errors(pocket_program().encode(), tools=TOOLS, binary=always)
    assert len((tmp_path / "always" / "runs").read_text().split()) == ATTEMPTS


def test_grbls_manual_tool_change_loads_the_tool_its_comment_names() -> None:
    grbl = pocket_program().replace(
        "T1 M6\n", "M5\n(TOOL CHANGE: load T1 6 mm flat end mill, touch off Z, resume)\nM0\n"
    )
    assert failed(run(grbl, pocket_part())) == set()
    assert rs274_errors(grbl.encode(), tools=TOOLS) == ()
    unnamed = pocket_program().replace("T1 M6\n", "M0\n")
    assert "spindle and feed" in failed(run(unnamed, pocket_part()))


def test_the_settings_defaults_are_the_verifiers() -> None:
    from django.conf import settings

    from production.toolpath import cnc_verify, rs274

    assert settings.MF_CNC_ZMAP_RESOLUTION_MM == cnc_verify.RESOLUTION_MM
    assert settings.MF_CNC_GOUGE_TOLERANCE_MM == cnc_verify.GOUGE_TOLERANCE_MM
    assert settings.MF_CNC_REMAINING_TOLERANCE_MM == cnc_verify.REMAINING_TOLERANCE_MM
    assert (settings.MF_RS274_BINARY, settings.MF_RS274_TIMEOUT_S) == (
        rs274.BINARY,
        rs274.TIMEOUT_S,
    )


def test_an_incremental_drilling_cycle_is_refused_not_guessed() -> None:
    program = DRILL_PROGRAM.replace("G0 Z10\nG99 G81", "G0 Z10\nG91\nG99 G81").replace(
        "X35\n", "X20\nG90\n"
    )
    report = run(program, holes_part())
    assert "commands" in failed(report)
    assert "G91" in report.checks[1].message
