"""Cable clip: a snap-in ring that holds a cable or a bundle on a screw-mounted tab.

Press the cable through the slot at the top; the ring is 0.3 mm larger than the cable.
"""

import cadquery as cq

cable_d = 8.0
width = 10.0
wall = 1.6
gap_ratio = 0.7
hole_d = 3.5

inner_r = cable_d / 2 + 0.15
outer_r = inner_r + wall
tab_length = hole_d + 6
centre_z = outer_r

ring = cq.Workplane("XZ").center(0, centre_z).circle(outer_r).extrude(-width)
base = cq.Workplane("XY").box(2 * outer_r + tab_length, width, wall, centered=(False, False, False))
clip = ring.union(base.translate((-outer_r, 0, 0)))
clip = clip.cut(cq.Workplane("XZ").center(0, centre_z).circle(inner_r).extrude(-width))
# The slot the cable snaps through: a share of the cable's diameter, across the top.
gap = gap_ratio * cable_d
clip = clip.cut(
    cq.Workplane("XY")
    .box(gap, width, outer_r, centered=(True, False, False))
    .translate((0, 0, centre_z))
)
clip = clip.cut(
    cq.Workplane("XY").center(outer_r + tab_length / 2, width / 2).circle(hole_d / 2).extrude(wall)
)

show_object(clip)  # noqa: F821 - cqgi provides show_object
