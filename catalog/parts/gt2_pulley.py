"""GT2 timing pulley (2 mm pitch) with a hub, a set-screw hole and optional flanges.

The tooth grooves approximate the GT2 profile with round-bottomed cuts 0.76 mm deep: print
one and check the belt's fit before a batch. The set-screw hole is M3 tap size (2.5 mm).
"""

import math

import cadquery as cq

teeth = 20
belt_width = "6"
bore_d = 5.0
hub_d = 16.0
hub_height = 7.0
flanges = True

pitch_d = teeth * 2.0 / math.pi
outer_d = pitch_d - 0.508  # the belt's pitch line lies 0.254 mm outside the teeth
# Fixed sizes, not parameters (cqgi offers every single constant assignment as one).
groove_depth, groove_r, flange_t = 0.764, 0.555, 1.0
toothed_length = float(belt_width) + 1.0
flange_d = outer_d + 3.0

pulley = cq.Workplane("XY").circle(outer_d / 2).extrude(toothed_length)
groove_centre = outer_d / 2 - groove_depth + groove_r
pulley = pulley.cut(
    cq.Workplane("XY")
    .polarArray(groove_centre, 0, 360, teeth)
    .circle(groove_r)
    .extrude(toothed_length)
)
z = 2 * flange_t if flanges else 0
if flanges:
    pulley = pulley.translate((0, 0, flange_t))
    pulley = pulley.union(cq.Workplane("XY").circle(flange_d / 2).extrude(flange_t))
    pulley = pulley.union(
        cq.Workplane("XY")
        .circle(flange_d / 2)
        .extrude(flange_t)
        .translate((0, 0, flange_t + toothed_length))
    )
top = z + toothed_length
pulley = pulley.union(
    cq.Workplane("XY").circle(hub_d / 2).extrude(hub_height).translate((0, 0, top))
)
height = top + hub_height
pulley = pulley.cut(cq.Workplane("XY").circle(bore_d / 2 + 0.1).extrude(height))
set_screw = cq.Solid.makeCylinder(
    1.25, hub_d, cq.Vector(0, 0, top + hub_height / 2), cq.Vector(1, 0, 0)
)
pulley = pulley.cut(set_screw)

show_object(pulley)  # noqa: F821 - cqgi provides show_object
