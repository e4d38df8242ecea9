"""Spacer or bushing: a tube with optional lead-in chamfers and an optional flange.

Drawn as one half-section profile revolved about Z, so every chamfer is part of the
outline rather than an edge operation that can fail on small parts. The flange, if any,
sits at z = 0 and is printed on the bed.
"""

import cadquery as cq

inner_d = 8.0
outer_d = 14.0
length = 12.0
chamfer = 0.5
flanged = False
flange_d = 22.0
flange_t = 2.0

r_in = inner_d / 2
r_out = outer_d / 2
r_flange = flange_d / 2
c = chamfer

if flanged:
    foot = [
        (r_flange - c, 0),
        (r_flange, c),
        (r_flange, flange_t - c),
        (r_flange - c, flange_t),
        (r_out, flange_t),
    ]
else:
    foot = [(r_out - c, 0), (r_out, c)]
profile = [
    (r_in + c, 0),
    *foot,
    (r_out, length - c),
    (r_out - c, length),
    (r_in + c, length),
    (r_in, length - c),
    (r_in, c),
]
# Without a chamfer, neighbouring points coincide: drop the repeats.
outline = [point for i, point in enumerate(profile) if point != profile[i - 1]]

spacer = cq.Workplane("XZ").polyline(outline).close().revolve(360, (0, 0, 0), (0, 1, 0))

show_object(spacer)  # noqa: F821 - cqgi provides show_object
