"""Standoff: a hex or round spacer column for circuit boards, panels and sensors.

The hole is either tap size (tap it, or drive a self-tapping screw) or clearance size (a
screw and nut through it). Both ends carry a 0.4 mm chamfer.
"""

import cadquery as cq

thread = "M3"
length = 15.0
across_flats = 6.0
shape = "hex"
hole = "tap"

tap_d, clearance_d = {
    "M2.5": (2.05, 2.9),
    "M3": (2.5, 3.4),
    "M4": (3.3, 4.5),
    "M5": (4.2, 5.5),
    "M6": (5.0, 6.6),
}[thread]
hole_d = tap_d if hole == "tap" else clearance_d

if shape == "hex":
    body = cq.Workplane("XY").polygon(6, across_flats / (3**0.5 / 2)).extrude(length)
else:
    body = cq.Workplane("XY").circle(across_flats / 2).extrude(length)
body = body.faces(">Z or <Z").edges().chamfer(0.4)
body = body.cut(cq.Workplane("XY").circle(hole_d / 2).extrude(length))

show_object(body)  # noqa: F821 - cqgi provides show_object
