"""D-shaft knob: a control knob for potentiometers, encoders and valve spindles with a flat.

The D bore is 0.1 mm larger than the shaft all round: a push fit in PETG or ABS. A groove
across the top marks the pointer, and ribs around the rim give grip.
"""

import math

import cadquery as cq

knob_d = 20.0
height = 15.0
shaft_d = 6.0
across_flat = 4.5
shaft_depth = 10.0
ribs = 18
pointer = True

knob = (
    cq.Workplane("XY")
    .circle(knob_d / 2)
    .extrude(height)
    .faces(">Z")
    .edges()
    .chamfer(min(1.0, knob_d / 20))
)
if ribs > 0:
    # Shallow round grooves around the rim, as deep as a quarter of their pitch.
    groove_r = min(0.25 * math.pi * knob_d / ribs, 1.5)
    knob = knob.cut(
        cq.Workplane("XY")
        .polarArray(knob_d / 2 + groove_r * 0.4, 0, 360, ribs)
        .circle(groove_r)
        .extrude(height)
    )
if pointer:
    knob = knob.cut(
        cq.Workplane("XY")
        .center(knob_d / 4, 0)
        .rect(knob_d / 2, 1.2)
        .extrude(0.8)
        .translate((0, 0, height - 0.8))
    )
# The D: a round bore with the flat at across_flat from the opposite side.
bore = cq.Workplane("XY").circle(shaft_d / 2 + 0.1).extrude(shaft_depth)  # 0.1 mm of fit
flat_x = across_flat - shaft_d / 2 + 0.1
bore = bore.cut(
    cq.Workplane("XY")
    .center(flat_x + shaft_d, 0)
    .rect(2 * shaft_d, 2 * shaft_d)
    .extrude(shaft_depth)
)
knob = knob.cut(bore)

show_object(knob)  # noqa: F821 - cqgi provides show_object
