"""Flat mounting bracket: an L-shaped plate (a corner or angle plate lying flat) with a row of
screw holes along each leg, cut from aluminium plate on the mill or acrylic sheet on the laser.

Both legs are leg_width wide; the inside corner is rounded by inner_r (at least the end mill's
radius on the mill), the outside corners by outer_r. Holes sit on each leg's centre line,
evenly spaced from hole_margin past the corner square to hole_margin from the leg's end.
"""

import cadquery as cq

leg_a = 80.0
leg_b = 60.0
leg_width = 25.0
thickness = 5.0
hole_d = 5.5
holes_per_leg = 2
hole_margin = 8.0
inner_r = 4.0
outer_r = 3.0

w = leg_width
bracket = (
    cq.Workplane("XY")
    .polyline([(0, 0), (leg_a, 0), (leg_a, w), (w, w), (w, leg_b), (0, leg_b)])
    .close()
    .extrude(thickness)
)
if inner_r > 0:
    bracket = (
        bracket.edges("|Z").edges(cq.selectors.NearestToPointSelector((w, w, 0))).fillet(inner_r)
    )
if outer_r > 0:
    for corner in ((0, 0, 0), (leg_a, 0, 0), (leg_a, w, 0), (w, leg_b, 0), (0, leg_b, 0)):
        bracket = (
            bracket.edges("|Z").edges(cq.selectors.NearestToPointSelector(corner)).fillet(outer_r)
        )


def spaced(start, end, count):
    if count == 1:
        return [(start + end) / 2]
    return [start + (end - start) * i / (count - 1) for i in range(count)]


centres = [(x, w / 2) for x in spaced(w + hole_margin, leg_a - hole_margin, holes_per_leg)]
centres += [(w / 2, y) for y in spaced(w + hole_margin, leg_b - hole_margin, holes_per_leg)]
for x, y in centres:
    bracket = bracket.cut(
        cq.Workplane("XY").circle(hole_d / 2).extrude(thickness + 2).translate((x, y, -1))
    )

show_object(bracket)  # noqa: F821 - cqgi provides show_object
