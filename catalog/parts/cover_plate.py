"""Cover plate: a flat plate with rounded corners and screw holes along its edges, to close
an opening in a cabinet, a guard or a machine frame.

Holes sit edge_margin in from every edge, evenly spaced; countersunk holes take 90° flat-head
screws.
"""

import cadquery as cq

length = 100.0
width = 60.0
thickness = 3.0
corner_r = 5.0
hole_d = 4.5
holes_x = 3
holes_y = 2
edge_margin = 6.0
countersunk = False

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
holes = plate.faces(">Z").workplane().pushPoints(sorted(points))
if countersunk:
    plate = holes.cskHole(hole_d, 2 * hole_d, 90)
else:
    plate = holes.hole(hole_d)

show_object(plate)  # noqa: F821 - cqgi provides show_object
