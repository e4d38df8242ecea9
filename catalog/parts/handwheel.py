"""Handwheel: a spoked wheel for spindles, valves and adjusting screws.

The bore carries 0.1 mm of clearance; an M5 set screw (4.2 mm tap hole) through the hub
holds the wheel on its shaft.
"""

import cadquery as cq

wheel_d = 100.0
rim_width = 10.0
rim_height = 12.0
hub_d = 25.0
hub_height = 20.0
bore_d = 10.0
spokes = 3

rim = (
    cq.Workplane("XY")
    .circle(wheel_d / 2)
    .circle(wheel_d / 2 - rim_width)
    .extrude(rim_height)
    .edges()
    .fillet(min(rim_width, rim_height) / 4)
)
spoke_height = 0.6 * rim_height
spoke_length = wheel_d / 2 - rim_width / 2
spoke = (
    cq.Workplane("XY")
    .center(spoke_length / 2, 0)
    .rect(spoke_length, 0.8 * rim_width)
    .extrude(spoke_height)
)
wheel = rim
for i in range(spokes):
    wheel = wheel.union(spoke.rotate((0, 0, 0), (0, 0, 1), 360 * i / spokes))
wheel = wheel.union(cq.Workplane("XY").circle(hub_d / 2).extrude(hub_height))
wheel = wheel.cut(cq.Workplane("XY").circle(bore_d / 2 + 0.1).extrude(hub_height))
set_screw = cq.Solid.makeCylinder(2.1, hub_d, cq.Vector(0, 0, hub_height / 2), cq.Vector(1, 0, 0))
wheel = wheel.cut(set_screw.rotate(cq.Vector(0, 0, 0), cq.Vector(0, 0, 1), 180 / spokes))

show_object(wheel)  # noqa: F821 - cqgi provides show_object
