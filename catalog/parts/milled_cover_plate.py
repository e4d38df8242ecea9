"""Milled cover plate: a plate with rounded corners and screw holes along its edges, milled
from aluminium plate.

Like the printed cover plate, without countersinks (the mill's tool table has none). A recess
in the top face (recess_depth, 0 for none) takes a label or a gasket: it keeps recess_margin
from every edge, and its corners are rounded by recess_r, at least the end mill's radius.
"""

import cadquery as cq

length = 100.0
width = 60.0
thickness = 6.0
corner_r = 5.0
hole_d = 5.0
holes_x = 3
holes_y = 2
edge_margin = 8.0
recess_depth = 1.0
recess_margin = 14.0
recess_r = 4.0

plate = cq.Workplane("XY").box(length, width, thickness, centered=(True, True, False))
if corner_r > 0:
    plate = plate.edges("|Z").fillet(corner_r)
if recess_depth > 0:
    recess = (
        cq.Workplane("XY")
        .box(
            length - 2 * recess_margin,
            width - 2 * recess_margin,
            recess_depth + 1,
            centered=(True, True, False),
        )
        .edges("|Z")
        .fillet(recess_r)
        .translate((0, 0, thickness - recess_depth))
    )
    plate = plate.cut(recess)
x0, y0 = length / 2 - edge_margin, width / 2 - edge_margin
points = set()
for i in range(holes_x):
    x = -x0 + 2 * x0 * i / (holes_x - 1)
    points |= {(round(x, 6), -y0), (round(x, 6), y0)}
for j in range(holes_y):
    y = -y0 + 2 * y0 * j / (holes_y - 1)
    points |= {(-x0, round(y, 6)), (x0, round(y, 6))}
for x, y in sorted(points):
    plate = plate.cut(
        cq.Workplane("XY").circle(hole_d / 2).extrude(thickness + 2).translate((x, y, -1))
    )

show_object(plate)  # noqa: F821 - cqgi provides show_object
