"""Pipe clamp (saddle): a strap over a pipe or conduit with a screw foot on each side.

The strap's inside is 0.2 mm larger than the pipe, so it slides on; tighten the two screws
to clamp. The feet carry clearance holes for pan-head or hex-head screws.
"""

import cadquery as cq

pipe_d = 22.0
width = 15.0
thickness = 2.5
hole_d = 4.5

inner_r = pipe_d / 2 + 0.2
outer_r = inner_r + thickness
foot_length = 2 * hole_d + 4
centre_z = inner_r  # the pipe lies on the wall: its axis is one radius above it


def saddle(radius: float, *, below: float = 0) -> cq.Workplane:
    """A half cylinder on top of a block down to the wall (and `below` it), along Y."""
    round_top = cq.Workplane("XZ").center(0, centre_z).circle(radius).extrude(-width)
    block = cq.Workplane("XY").box(
        2 * radius, width, centre_z + below, centered=(True, False, False)
    )
    return round_top.union(block.translate((0, 0, -below)))


feet = cq.Workplane("XY").box(
    2 * (outer_r + foot_length), width, thickness, centered=(True, False, False)
)
# The inner cut reaches below the wall so that no face of it lies on the wall's plane.
clamp = saddle(outer_r).union(feet).cut(saddle(inner_r, below=1))
# The outer cylinder reaches below the wall by one strap thickness: cut it flush.
clamp = clamp.cut(
    cq.Workplane("XY")
    .box(2 * (outer_r + foot_length), width, thickness, centered=(True, False, False))
    .translate((0, 0, -thickness))
)
hole_x = outer_r + foot_length / 2
clamp = clamp.cut(
    cq.Workplane("XY")
    .pushPoints([(-hole_x, width / 2), (hole_x, width / 2)])
    .circle(hole_d / 2)
    .extrude(thickness)
)

show_object(clamp)  # noqa: F821 - cqgi provides show_object
