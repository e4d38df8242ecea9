"""Mounting bracket: an L-bracket of even thickness with a row of screw holes in each leg.

The inside corner is rounded with radius = thickness and the outside with 2 x thickness,
so the bend is as thick as the legs. Holes sit in the middle of each leg's flat part.
"""

import cadquery as cq

width = 40.0
leg_a = 50.0
leg_b = 50.0
thickness = 5.0
hole_d = 5.5
hole_count = 2

t = thickness
bracket = (
    cq.Workplane("XZ")
    .polyline([(0, 0), (leg_a, 0), (leg_a, t), (t, t), (t, leg_b), (0, leg_b)])
    .close()
    .extrude(width / 2, both=True)
)
bracket = bracket.edges("|Y").edges(cq.selectors.NearestToPointSelector((t, 0, t))).fillet(t)
bracket = bracket.edges("|Y").edges(cq.selectors.NearestToPointSelector((0, 0, 0))).fillet(2 * t)

hole_ys = [width * (i + 0.5) / hole_count - width / 2 for i in range(hole_count)]
base_x = (2 * t + leg_a) / 2  # middle of the base leg's flat part
upright_z = (2 * t + leg_b) / 2  # middle of the upright leg's flat part
for y in hole_ys:
    bracket = bracket.cut(
        cq.Solid.makeCylinder(hole_d / 2, t + 2, cq.Vector(base_x, y, -1), cq.Vector(0, 0, 1))
    )
    bracket = bracket.cut(
        cq.Solid.makeCylinder(hole_d / 2, t + 2, cq.Vector(-1, y, upright_z), cq.Vector(1, 0, 0))
    )

show_object(bracket)  # noqa: F821 - cqgi provides show_object
