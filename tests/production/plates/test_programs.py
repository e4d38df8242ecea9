"""The plan for N copies and its plate map (no slicing: pure values and shapes)."""

from xml.etree import ElementTree

import trimesh

from production.plates.arrange import Bed
from production.plates.programs import plan_copies, plate_map_svg

SVG = "{http://www.w3.org/2000/svg}"


def test_the_plan_places_every_copy_and_the_map_numbers_each_where_it_stands() -> None:
    parts = {4: trimesh.creation.box((30, 20, 5)), 9: trimesh.creation.cylinder(8, 5)}
    bed = Bed((120.0, 100.0))
    plan = plan_copies(parts, {4: 3, 9: 4}, bed, spacing_mm=6, max_plates=5)
    placed = [(p.job, p.copy) for plate in plan.arrangement.plates for p in plate.placements]
    assert sorted(placed) == [(4, 1), (4, 2), (4, 3), (9, 1), (9, 2), (9, 3), (9, 4)]
    assert plan.lower_bound == 1 and not plan.arrangement.unplaced
    plate = plan.arrangement.plates[0]
    labels = [str(n) for n in range(1, len(plate.placements) + 1)]
    svg = ElementTree.fromstring(plate_map_svg(plate, plan.footprints, bed, labels=labels))
    assert [t.text for t in svg.iter(f"{SVG}text")] == labels
    assert len(list(svg.iter(f"{SVG}path"))) == len(plate.placements)
    # y is turned: a copy near the bed's front (small y) is drawn near the bottom of the map.
    front = min(plate.placements, key=lambda p: p.y_mm)
    text = list(svg.iter(f"{SVG}text"))[plate.placements.index(front)]
    assert float(text.get("y")) > 50
