"""Shaft collar: a ring that stops a shaft sliding, held by one radial set screw.

The set-screw hole is drilled at tap size (5.0 mm for M6): tap it after printing, or
press in a heat-set insert of that outer diameter.
"""

import cadquery as cq

bore_d = 25.0
outer_d = 45.0
width = 14.0
screw_hole_d = 5.0

edge_chamfer = min(0.8, width / 8)

collar = (
    cq.Workplane("XY")
    .circle(outer_d / 2)
    .circle(bore_d / 2)
    .extrude(width)
    .edges("%CIRCLE")
    .chamfer(edge_chamfer)
)
# Radial, at mid-width, from the axis out through one wall.
set_screw_hole = cq.Solid.makeCylinder(
    screw_hole_d / 2, outer_d, cq.Vector(0, 0, width / 2), cq.Vector(0, 1, 0)
)
collar = collar.cut(set_screw_hole)

show_object(collar)  # noqa: F821 - cqgi provides show_object
