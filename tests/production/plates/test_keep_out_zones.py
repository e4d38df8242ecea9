"""Machine keep-out zones: checked when entered (model, admin), kept clear by the arrangement."""

import itertools

import pytest
from django.contrib.admin.sites import site as admin_site
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from shapely.geometry import Point, box

from production.models import Machine
from production.plates.arrange import Bed, CopyToPlace, arrange, bed_for, placed_footprint
from production.plates.values import KeepOutZone, keep_out_zones_from_json
from tests.builders import make_machine, make_user
from tests.production.toolpath.gcode_reader import make_profile

CLIP = {"x_mm": 0, "y_mm": 180, "width_mm": 40, "depth_mm": 30, "note": "bed clip"}


def test_zones_are_read_from_the_machines_json() -> None:
    zones = keep_out_zones_from_json(
        [CLIP, {"x_mm": 200, "y_mm": 0, "width_mm": 50, "depth_mm": 9.5}]
    )
    assert zones == (
        KeepOutZone(0.0, 180.0, 40.0, 30.0, "bed clip"),
        KeepOutZone(200.0, 0.0, 50.0, 9.5),
    )
    assert [zone.to_json() for zone in zones][0] == {**CLIP, "x_mm": 0.0, "y_mm": 180.0}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"x_mm": 0}, "give a list of rectangles"),
        (["clip"], "zone 1 is not an object"),
        ([{"x_mm": 0, "y_mm": 0, "width_mm": 5}], "zone 1: missing depth_mm"),
        ([{**CLIP, "colour": "red"}], "zone 1: unknown colour"),
        ([CLIP, {**CLIP, "width_mm": "40"}], "zone 2: width_mm must be a number of mm"),
        ([{**CLIP, "depth_mm": True}], "depth_mm must be a number"),
        ([{**CLIP, "width_mm": -5}], "zone 1: its size cannot be negative"),
        ([{**CLIP, "depth_mm": 0}], "covers nothing"),
        ([{**CLIP, "note": 7}], "the note must be text"),
        ([CLIP] * 21, "at most 20 keep-out zones"),
    ],
)
def test_malformed_zones_are_refused_with_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        keep_out_zones_from_json(value)


def test_a_zone_must_lie_inside_the_bed() -> None:
    keep_out_zones_from_json([CLIP], bed_mm=(250.0, 210.0))  # its far corner on the edge
    with pytest.raises(ValueError, match=r"zone 1 \(0, 180\) to \(40, 210\) mm is not inside"):
        keep_out_zones_from_json([CLIP], bed_mm=(250.0, 200.0))
    with pytest.raises(ValueError, match="not inside the 250 x 210 mm bed"):
        keep_out_zones_from_json([{**CLIP, "x_mm": -1}], bed_mm=(250.0, 210.0))


@pytest.mark.django_db
def test_the_machine_refuses_zones_outside_its_bed_on_the_field() -> None:
    machine = make_machine(volume=(250, 210, 220))
    machine.keep_out_zones = [{**CLIP, "x_mm": 230}]
    with pytest.raises(ValidationError) as raised:
        machine.full_clean()
    assert raised.value.message_dict["keep_out_zones"] == [
        "Zone 1 (230, 180) to (270, 210) mm is not inside the 250 x 210 mm bed."
    ]
    machine.keep_out_zones = [{**CLIP, "width_mm": -3}]
    with pytest.raises(ValidationError) as raised:
        machine.full_clean()
    # Said once, by the field's validator, not again by the bed check.
    assert raised.value.message_dict["keep_out_zones"] == [
        "Zone 1: its size cannot be negative (-3 x 30 mm)."
    ]
    machine.keep_out_zones = [CLIP]
    machine.full_clean()
    machine.save()
    assert Machine.objects.get(pk=machine.pk).keep_out_zones == [CLIP]


@pytest.mark.django_db
def test_the_admin_form_shows_a_clear_error_for_a_zone_off_the_bed() -> None:
    machine = make_machine()
    admin = make_user("boss")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    request = RequestFactory().get("/")
    request.user = admin
    machine_admin = admin_site._registry[Machine]
    form_class = machine_admin.get_form(request, obj=machine)
    initial = form_class(instance=machine).initial
    data = {
        key: value
        for key, value in initial.items()
        if value is not None and key not in {"materials_loaded", "materials_loadable"}
    }
    data["materials_loaded"] = [m.pk for m in machine.materials_loaded.all()]
    data["keep_out_zones"] = '[{"x_mm": 240, "y_mm": 0, "width_mm": 20, "depth_mm": 20}]'
    form = form_class(data=data, instance=machine)
    assert not form.is_valid()
    assert form.errors["keep_out_zones"] == [
        "Zone 1 (240, 0) to (260, 20) mm is not inside the 250 x 210 mm bed."
    ]
    data["keep_out_zones"] = '[{"x_mm": 200, "y_mm": 0, "width_mm": 20, "depth_mm": 20}]'
    form = form_class(data=data, instance=machine)
    assert form.is_valid(), form.errors


def test_no_copy_is_placed_in_a_machines_keep_out_zone() -> None:
    profile = make_profile()
    zones = keep_out_zones_from_json(
        [CLIP, {"x_mm": 100, "y_mm": 60, "width_mm": 50, "depth_mm": 80, "note": "worn patch"}],
        bed_mm=profile.bed_mm,
    )
    bed = bed_for(profile, keep_out_zones=zones)
    disc = Point(0, 0).buffer(11)
    copies = [CopyToPlace(job=1, copy=n, footprint=disc) for n in range(1, 61)]
    arrangement = arrange(copies, bed, spacing_mm=6.0)
    assert arrangement.copies_placed == 60 and not arrangement.unplaced
    rectangles = [box(0, 180, 40, 210), box(100, 60, 150, 140)]
    for plate in arrangement.plates:
        shapes = [placed_footprint(disc, p) for p in plate.placements]
        for shape in shapes:
            # Clear of each zone by the bed's margin, as from the bed's edge.
            assert all(shape.distance(zone) >= bed.margin_mm - 1e-6 for zone in rectangles)
        for a, b in itertools.combinations(shapes, 2):
            assert a.distance(b) >= 6.0 - 1e-6
    # The zone costs room: the plates hold fewer than on a clear bed.
    clear = arrange(copies, bed_for(profile), spacing_mm=6.0)
    assert len(arrangement.plates) >= len(clear.plates)


def test_a_copy_only_a_keep_out_zone_keeps_off_the_bed_is_reported_not_dropped() -> None:
    # A 200 x 150 mm part fits the 240 x 200 mm inside of the margin, but not beside a zone in
    # the middle of the bed: it is unplaced with the reason; the small parts still go on.
    middle = KeepOutZone(110.0, 90.0, 30.0, 30.0, "probe")
    bed = bed_for(make_profile(), keep_out_zones=[middle])
    copies = [
        CopyToPlace(job=1, copy=1, footprint=box(0, 0, 200, 150)),
        *(CopyToPlace(job=2, copy=n, footprint=box(0, 0, 20, 20)) for n in range(1, 4)),
    ]
    arrangement = arrange(copies, bed, spacing_mm=6.0)
    assert [(u.job, u.copy) for u in arrangement.unplaced] == [(1, 1)]
    assert "keep-out zones leave no place" in arrangement.unplaced[0].reason
    assert sorted(p.copy for plate in arrangement.plates for p in plate.placements) == [1, 2, 3]


def test_discs_pack_in_offset_columns_when_rows_leave_room() -> None:
    # 45 mm discs 6 mm apart on the 240 x 200 mm inside: rows pulled to the front hold
    # 4 + 4 + 4 + 4 = 16, columns pulled to the left 4 + 3 + 4 + 3 + 4 = 18; the fill keeps the
    # better, so 50 copies take 3 plates, not 4.
    disc = Point(0, 0).buffer(22.5)
    copies = [CopyToPlace(job=1, copy=n, footprint=disc) for n in range(1, 51)]
    arrangement = arrange(copies, Bed((250.0, 210.0), margin_mm=5.0), spacing_mm=6.0)
    assert [len(plate.placements) for plate in arrangement.plates] == [18, 18, 14]


@pytest.mark.django_db
def test_a_plate_keeps_clear_of_the_zones_of_every_machine_that_may_print_it() -> None:
    from production.plate_runner import keep_out_zones_of_profile

    clip = {"x_mm": 0, "y_mm": 0, "width_mm": 20, "depth_mm": 20}
    camera = {"x_mm": 200, "y_mm": 150, "width_mm": 40, "depth_mm": 50}
    first, twin, other = make_machine("mk4-1"), make_machine("mk4-2"), make_machine("xl-1")
    Machine.objects.filter(pk=first.pk).update(keep_out_zones=[clip])
    Machine.objects.filter(pk=twin.pk).update(keep_out_zones=[camera])
    # Another model runs other G-code: its zones are not this plate's.
    Machine.objects.filter(pk=other.pk).update(model="Prusa XL", keep_out_zones=[camera, clip])
    zones = keep_out_zones_of_profile("mk4-1")
    assert sorted((z.x_mm, z.y_mm) for z in zones) == [(0, 0), (200, 150)]
    assert keep_out_zones_of_profile("no-such-machine") == ()
