"""A laser program's cut paths as SVG and DXF, for cutters driven from vector files.

Both are read back from the program's G-code (laser_verify.read_laser_gcode), so the files
hold exactly what the program cuts: the kerf-compensated rings (the cutter must not offset
them again) in cutting order, and the lead-ins apart. Millimetres, origin at the sheet's
front-left corner as in the program.

- SVG: width/height in mm, viewBox = the sheet; y is flipped (SVG's y runs down). Rings are
  closed paths in red on layer "cut", lead-ins blue on layer "lead-in" (most cutting software
  maps colours to settings), stroke 0.01 mm (a hairline: cut, not engraved).
- DXF (ezdxf, R2010, $INSUNITS = mm): rings are closed LWPOLYLINEs on layer CUT, lead-ins
  LINEs on layer LEAD_IN.
"""

import io
from xml.sax.saxutils import quoteattr

from ezdxf import units
from ezdxf.filemanagement import new as new_dxf

from production.toolpath.laser_verify import read_laser_gcode
from production.toolpath.program import MachineProgram


def _coords(points: tuple[tuple[float, float], ...], height: float) -> str:
    return " ".join(f"{x:.3f},{height - y:.3f}" for x, y in points)


def cut_svg(program: MachineProgram) -> bytes:
    """The program's cut paths as an SVG drawing of the sheet, in millimetres."""
    width, height = program.stock.x_mm, program.stock.y_mm
    moves = read_laser_gcode(program.gcode)
    rings, leads = [], []
    for number, cut in enumerate(moves.cuts, start=1):
        ring = cut.ring or cut.points  # an open cut is drawn open, as cut
        close = " Z" if cut.ring else ""
        rings.append(
            f'    <path id="contour-{number}" d="M {_coords(ring[:-1] if close else ring, height)}'
            f'{close}"/>'
        )
        if cut.lead_in:
            leads.append(f'    <path d="M {_coords(cut.lead_in, height)}"/>')
    title = f"{program.stock.material} {program.stock.thickness_mm:g} mm, {program.engine}"
    svg = "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.3f}mm" '
            f'height="{height:.3f}mm" viewBox="0 0 {width:.3f} {height:.3f}">',
            f"  <title>{_escape(title)}</title>",
            '  <g id="cut" fill="none" stroke="#ff0000" stroke-width="0.01">',
            *rings,
            "  </g>",
            '  <g id="lead-in" fill="none" stroke="#0000ff" stroke-width="0.01">',
            *leads,
            "  </g>",
            "</svg>",
            "",
        ]
    )
    return svg.encode()


def _escape(text: str) -> str:
    return quoteattr(text)[1:-1]


def cut_dxf(program: MachineProgram) -> bytes:
    """The program's cut paths as a DXF drawing in millimetres."""
    document = new_dxf("R2010", setup=False, units=units.MM)
    document.layers.add("CUT", color=1)  # red
    document.layers.add("LEAD_IN", color=5)  # blue
    space = document.modelspace()
    for cut in read_laser_gcode(program.gcode).cuts:
        if cut.ring:
            space.add_lwpolyline(cut.ring[:-1], close=True, dxfattribs={"layer": "CUT"})
        else:
            space.add_lwpolyline(cut.points, close=False, dxfattribs={"layer": "CUT"})
        for start, end in zip(cut.lead_in, cut.lead_in[1:], strict=False):
            space.add_line(start, end, dxfattribs={"layer": "LEAD_IN"})
    text = io.StringIO()
    document.write(text)
    return text.getvalue().encode()
