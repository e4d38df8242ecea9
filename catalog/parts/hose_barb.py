"""Hose barb adapter: joins two hoses of the same or different inside diameters.

Barbs are 15 % over the hose's inside diameter at their crest and 8 % under it at their
root; push the hose over them and add a clamp for pressure. The bore is even throughout.
"""

import cadquery as cq

hose_a_id = 10.0
hose_b_id = 8.0
barbs = 3
wall = 1.6
collar_height = 4.0

radius_a, radius_b = hose_a_id / 2, hose_b_id / 2
root_a, root_b = 0.92 * radius_a, 0.92 * radius_b
bore_r = min(root_a, root_b) - wall
barb_a, barb_b = 0.6 * hose_a_id + 2, 0.6 * hose_b_id + 2
collar_r = max(radius_a, radius_b) * 1.15 + 2

# The outline in (radius, height), from the tip of side A up over the collar to the tip of
# side B, then down the bore. Each barb ramps up towards the collar and drops sharply.
outline, z = [(bore_r, 0.0), (root_a, 0.0)], 0.0
for _ in range(barbs):
    outline += [(1.15 * radius_a, z + barb_a), (root_a, z + barb_a)]
    z += barb_a
outline += [(collar_r, z), (collar_r, z + collar_height)]
z += collar_height
for i in range(barbs):
    outline += [(root_b, z), (1.15 * radius_b, z)] if i == 0 else [(1.15 * radius_b, z)]
    z += barb_b
    outline += [(root_b, z)]
outline += [(bore_r, z)]

adapter = cq.Workplane("XZ").polyline(outline).close().revolve(360, (0, 0, 0), (0, 1, 0))

show_object(adapter)  # noqa: F821 - cqgi provides show_object
