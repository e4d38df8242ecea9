"""Flat cover plate: a plate with rounded corners and screw holes along its edges, laser cut
from sheet (acrylic).

Like the printed cover plate, without countersinks: a laser cuts straight through the sheet,
whose thickness is the plate's. The milled variant (milled_cover_plate.py) adds a recess.
"""

import cadquery as cq

length = 100.0
width = 60.0
thickness = 3.0
corner_r = 5.0
hole_d = 5.0
holes_x = 3
holes_y = 2
edge_margin = 8.0

plate = cq.Workplane("XY").box(length, width, thickness, centered=(True, True, False))
if corner_r > 0:
    plate = plate.edges("|Z").fillet(corner_r)
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
