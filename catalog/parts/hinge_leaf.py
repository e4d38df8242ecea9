"""Hinge leaf: one half of a pin hinge for doors, lids and guards.

Order one leaf with half "a" and one with half "b" of the same size: their knuckles mesh
with 0.4 mm of play, and a steel pin (a nail, a rod or a bolt) of pin_d goes through both.
The pin hole carries 0.2 mm of clearance.
"""

import cadquery as cq

length = 50.0
leaf_width = 25.0
thickness = 3.0
knuckles = 5
pin_d = 3.0
hole_d = 4.5
holes = 2
half = "a"

# Fixed play, not parameters (cqgi offers every single constant assignment as one).
gap, pin_play = 0.4, 0.2
knuckle_r = pin_d / 2 + thickness
segment = (length - (knuckles - 1) * gap) / knuckles
own = [i for i in range(knuckles) if (i % 2 == 0) == (half == "a")]
others = [i for i in range(knuckles) if i not in own]

leaf = cq.Workplane("XY").box(leaf_width, length, thickness, centered=(False, False, False))
for i in others:  # room for the other leaf's knuckles
    y = i * (segment + gap) - gap
    leaf = leaf.cut(
        cq.Workplane("XZ")
        .center(0, knuckle_r)
        .circle(knuckle_r + gap)
        .extrude(-(segment + 2 * gap))
        .translate((0, y, 0))
    )
for i in own:
    y = i * (segment + gap)
    leaf = leaf.union(
        cq.Workplane("XZ")
        .center(0, knuckle_r)
        .circle(knuckle_r)
        .extrude(-segment)
        .translate((0, y, 0))
    )
leaf = leaf.cut(
    cq.Workplane("XZ").center(0, knuckle_r).circle(pin_d / 2 + pin_play).extrude(-length)
)
hole_x = knuckle_r + gap + (leaf_width - knuckle_r - gap) / 2
pitch = length / holes
leaf = leaf.cut(
    cq.Workplane("XY")
    .pushPoints([(hole_x, pitch * (i + 0.5)) for i in range(holes)])
    .circle(hole_d / 2)
    .extrude(thickness)
)

show_object(leaf)  # noqa: F821 - cqgi provides show_object
