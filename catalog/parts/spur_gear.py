"""Involute spur gear: 20° pressure angle, standard addendum, with a bore and optional keyway.

Teeth follow the involute of the base circle, approximated by short straight segments (well
below a printer's resolution). The keyway follows DIN 6885: width about a quarter of the
bore, depth in the hub about 0.45 of its width.
"""

import math

import cadquery as cq

module = 1.5
teeth = 24
face_width = 8.0
bore_d = 8.0
keyway = False
hub = True

pressure_angle = math.radians(20)
pitch_r = module * teeth / 2
base_r = pitch_r * math.cos(pressure_angle)
tip_r = pitch_r + module
root_r = pitch_r - 1.25 * module


def involute(angle: float) -> float:
    return math.tan(angle) - angle


# Half the angle a tooth spans at the base circle.
half_tooth = math.pi / (2 * teeth) + involute(pressure_angle)


def flank(sign: float, centre: float) -> list[tuple[float, float]]:
    """One flank from the root (or base circle) to the tip, around angle `centre`."""
    start = max(base_r, root_r)
    points = [] if base_r <= root_r else [_polar(root_r, centre + sign * half_tooth)]
    steps = 6
    for i in range(steps + 1):
        r = start + (tip_r - start) * i / steps
        roll = math.sqrt(max((r / base_r) ** 2 - 1, 0))
        angle = half_tooth - (roll - math.atan(roll))
        points.append(_polar(r, centre + sign * angle))
    return points


def _polar(r: float, angle: float) -> tuple[float, float]:
    return (r * math.cos(angle), r * math.sin(angle))


# Each flank is one spline through its involute points; straight lines cross tips and roots.
sketch = cq.Workplane("XY")
for tooth in range(teeth):
    centre = 2 * math.pi * tooth / teeth
    rising, falling = flank(-1, centre), list(reversed(flank(1, centre)))
    sketch = sketch.moveTo(*rising[0]) if tooth == 0 else sketch.lineTo(*rising[0])
    sketch = sketch.spline(rising[1:], includeCurrent=True).lineTo(*falling[0])
    sketch = sketch.spline(falling[1:], includeCurrent=True)
gear = sketch.close().extrude(face_width)
hub_d = min(bore_d + 8, 2 * root_r - 2)
if hub and hub_d > bore_d + 3:
    gear = gear.union(
        cq.Workplane("XY").circle(hub_d / 2).extrude(face_width / 2).translate((0, 0, face_width))
    )
height = face_width * (1.5 if hub and hub_d > bore_d + 3 else 1)
gear = gear.cut(cq.Workplane("XY").circle(bore_d / 2 + 0.1).extrude(height))
if keyway:
    key_w = max(2.0, round(bore_d / 4))
    key_depth = 0.45 * key_w
    gear = gear.cut(
        cq.Workplane("XY").center(bore_d / 2, 0).rect(2 * key_depth, key_w + 0.1).extrude(height)
    )

show_object(gear)  # noqa: F821 - cqgi provides show_object
