"""Clamping knob: a fluted grip with a hex pocket underneath for a nut or a bolt head.

Press a nut (or the head of a hex bolt) into the pocket; with through_hole off, the top
stays closed over a threaded stud. Pocket and hole carry 0.3 mm of print clearance.
"""

import math

import cadquery as cq

thread = "M6"
knob_d = 35.0
height = 16.0
flutes = 6
through_hole = True

# ISO 4032 nut across-flats and height, and medium clearance holes, per thread size.
nut_af, nut_m, clearance_d = {
    "M4": (7.0, 3.2, 4.5),
    "M5": (8.0, 4.7, 5.5),
    "M6": (10.0, 5.2, 6.6),
    "M8": (13.0, 6.8, 9.0),
    "M10": (16.0, 8.4, 11.0),
}[thread]
pocket_depth = nut_m + 0.5

knob = (
    cq.Workplane("XY")
    .circle(knob_d / 2)
    .extrude(height)
    .faces(">Z")
    .edges()
    .fillet(min(2.0, height / 5))
)

# Scallops for grip: n cylinders around the rim, each cutting half its radius deep.
pitch = math.pi * knob_d / flutes
scallop_r = 0.25 * pitch
knob = knob.cut(
    cq.Workplane("XY")
    .polarArray(knob_d / 2 + 0.5 * scallop_r, 0, 360, flutes)
    .circle(scallop_r)
    .extrude(height)
)

# Both grow by 0.3 mm: printed holes come out smaller than drawn.
pocket_across_corners = (nut_af + 0.3) / (3**0.5 / 2)
knob = knob.cut(cq.Workplane("XY").polygon(6, pocket_across_corners).extrude(pocket_depth))
hole_depth = height if through_hole else height - 2
knob = knob.cut(cq.Workplane("XY").circle((clearance_d + 0.3) / 2).extrude(hole_depth))

show_object(knob)  # noqa: F821 - cqgi provides show_object
