"""Belt-guard bracket: a Z-shaped offset bracket that holds a belt or chain guard away from
the frame, with slotted holes in both flanges for adjustment.
"""

import cadquery as cq

length = 80.0
width = 25.0
thickness = 4.0
offset = 30.0
slot_length = 10.0
hole_d = 6.6

half = length / 2
# The Z in the XZ plane: base flange, web, top flange; extruded along Y.
profile = [
    (0, 0),
    (half, 0),
    (half, offset),
    (length, offset),
    (length, offset + thickness),
    (half - thickness, offset + thickness),
    (half - thickness, thickness),
    (0, thickness),
]
bracket = cq.Workplane("XZ").polyline(profile).close().extrude(-width)


def slot(x: float) -> cq.Workplane:
    if slot_length < 0.5:
        return (
            cq.Workplane("XY").center(x, width / 2).circle(hole_d / 2).extrude(offset + thickness)
        )
    return (
        cq.Workplane("XY")
        .center(x, width / 2)
        .slot2D(slot_length + hole_d, hole_d)
        .extrude(offset + thickness)
    )


# Each slot in the middle of the free part of its flange.
bracket = bracket.cut(slot((half - thickness) / 2)).cut(slot(1.5 * half))

show_object(bracket)  # noqa: F821 - cqgi provides show_object
