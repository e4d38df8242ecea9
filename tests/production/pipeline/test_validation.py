"""validate_part's contract with the runner, the API and the traveler (pure: no database)."""

import json

import numpy as np
import pytest
import trimesh

from microfactory.errors import Rejected
from production.pipeline.validation import (
    MachineLimits,
    ValidationLimits,
    ValidationRejected,
    dfm_report,
    validate_part,
)

pytestmark = pytest.mark.cad  # DFM validation of meshes; no database


def stl(mesh: trimesh.Trimesh) -> bytes:
    return mesh.export(file_type="stl")


VOLUMES = {"mk4": (250.0, 210.0, 220.0), "mini": (180.0, 180.0, 180.0)}
MK4 = MachineLimits("mk4", "fdm", (250.0, 210.0, 220.0), 0.4, "Prusa MK4")
FINE = MachineLimits("fine", "fdm", (180.0, 180.0, 180.0), 0.25, "fine nozzle printer")


def thin_tube(wall: float = 0.3) -> trimesh.Trimesh:
    return trimesh.creation.annulus(r_min=5 - wall, r_max=5, height=20)


def test_a_closed_box_passes_and_lists_the_machines_it_fits():
    report = validate_part(stl(trimesh.creation.box((200, 100, 50))), build_volumes_mm=VOLUMES)
    assert report.fits == ("mk4",)
    assert report.capable == ("mk4",)
    assert report.volume_mm3 == pytest.approx(200 * 100 * 50)
    assert report.extents_mm == (200, 100, 50)
    assert report.status == "pass"
    assert all(c.status == "pass" for c in report.checks)


def test_a_part_bigger_than_every_machine_is_rejected_with_its_size():
    with pytest.raises(Rejected, match=r"\(300.0 x 100.0 x 50.0 mm\) is larger than every"):
        validate_part(stl(trimesh.creation.box((300, 100, 50))), build_volumes_mm=VOLUMES)


def test_an_open_mesh_is_rejected():
    box = trimesh.creation.box((10, 10, 10))
    box.update_faces(np.arange(len(box.faces)) != 0)
    with pytest.raises(Rejected, match="not a closed solid"):
        validate_part(stl(box), build_volumes_mm=VOLUMES)


@pytest.mark.parametrize(
    "garbage", [b"", b"solid x\nfacet normal a b c\n", b"\x00" * 84 + b"\xff" * 7]
)
def test_garbage_is_rejected_not_crashed_on(garbage):
    with pytest.raises(Rejected):
        validate_part(garbage, build_volumes_mm=VOLUMES)


def test_two_bodies_are_a_warning():
    a = trimesh.creation.box((10, 10, 10))
    b = trimesh.creation.box((10, 10, 10))
    b.apply_translation((30, 0, 0))
    report = validate_part(stl(trimesh.util.concatenate([a, b])), build_volumes_mm=VOLUMES)
    assert report.bodies == 2
    assert report.warnings == ("2 separate bodies will be made together",)


def test_a_rejection_carries_the_whole_report_with_the_first_failure_as_reason():
    with pytest.raises(ValidationRejected) as rejected:
        validate_part(stl(thin_tube()), machines=[MK4])
    report = rejected.value.report
    assert str(rejected.value) == report.first_failure.message
    assert report.status == "fail"
    assert report.capable == ()
    assert {c.name for c in report.checks} >= {"watertight", "orientation", "min_wall", "overhang"}


def test_each_check_has_a_status_a_value_a_limit_and_a_plain_message():
    report = dfm_report(stl(thin_tube()), machines=[MK4])
    wall = next(c for c in report.checks if c.name == "min_wall")
    assert (wall.status, wall.value, wall.machine) == ("fail", "0.3 mm", "mk4")
    assert wall.limit == "≥ 0.8 mm (fails below 0.4 mm)"
    assert wall.message == (
        "thinnest wall 0.3 mm, Prusa MK4 cannot print walls thinner than 0.4 mm and needs "
        "0.8 mm for a sound wall: make that wall thicker (a parameter such as 'wall') or choose "
        "the CNC process"
    )


def test_a_wall_between_one_and_two_nozzle_widths_is_a_warning():
    report = validate_part(stl(thin_tube(0.6)), machines=[MK4])
    wall = next(c for c in report.checks if c.name == "min_wall")
    assert (wall.status, wall.value) == ("warn", "0.6 mm")
    assert wall.message.startswith(
        "thinnest wall 0.6 mm, Prusa MK4 needs at least 0.8 mm (2 x its 0.4 mm nozzle) for a "
        "sound wall: make that wall thicker"
    )


def test_a_strict_shop_can_reject_walls_under_two_nozzle_widths():
    with pytest.raises(Rejected, match="^thinnest wall 0.6 mm"):
        validate_part(
            stl(thin_tube(0.6)), machines=[MK4], limits=ValidationLimits(min_wall_fail_factor=2)
        )


def test_the_part_passes_when_one_machine_can_make_it_and_says_which():
    report = validate_part(stl(thin_tube()), machines=[MK4, FINE])
    assert report.capable == ("fine",)
    assert report.fits == ("mk4", "fine")
    assert [m.status for m in report.machines] == ["fail", "warn"]  # warn: a small first layer
    # The top-level checks are those of the machine that can make it.
    assert next(c for c in report.checks if c.name == "min_wall").machine == "fine"


def test_the_report_is_json_with_the_orientation_and_every_machine():
    report = validate_part(stl(trimesh.creation.box((30, 20, 10))), machines=[MK4])
    payload = json.loads(json.dumps(report.to_json()))
    assert payload["extents_mm"] == [30, 20, 10]
    assert payload["orientation"]["label"] == "as modelled (−Z down)"
    assert payload["orientation"]["matrix"] == [
        [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]
    ]  # fmt: skip
    assert payload["machines"][0]["key"] == "mk4"
    assert {"name", "status", "value", "limit", "message", "machine"} <= set(payload["checks"][0])


def test_extents_stay_as_modelled_when_another_orientation_is_chosen():
    plate = trimesh.creation.box((2, 60, 40))  # modelled standing on its narrow edge
    report = validate_part(stl(plate), machines=[MK4])
    assert report.extents_mm == (2, 60, 40)
    assert report.orientation.label.startswith("on its side")
    assert sorted(report.orientation.extents_mm) == [2, 40, 60]
    assert report.orientation.height_mm == 2


def test_a_part_that_fits_only_when_turned_is_rejected_with_how_to_turn_it():
    tall = trimesh.creation.box((20, 20, 240))  # fits the MK4 lying down, not standing
    with pytest.raises(Rejected, match=r"fits Prusa MK4 only on its side .*rotate it"):
        validate_part(stl(tall), machines=[MK4])


def test_the_same_mesh_gives_the_same_report():
    mesh = stl(thin_tube(1.0))
    assert dfm_report(mesh, machines=[MK4]) == dfm_report(mesh, machines=[MK4])


def test_running_out_of_time_is_a_clear_failure_not_a_hang():
    ticks = iter(range(0, 1000, 30))  # every look at the clock: 30 s later
    report = dfm_report(
        stl(trimesh.creation.box((10, 10, 10))),
        machines=[MK4],
        limits=ValidationLimits(time_budget_s=60),
        clock=lambda: float(next(ticks)),
    )
    assert report.status == "fail"
    assert report.checks[-1].name == "time_budget"
    assert "too complex to check within 60 s" in report.checks[-1].message


def test_step_input_goes_through_the_converter():
    box = stl(trimesh.creation.box((10, 10, 10)))
    report = dfm_report(b"ISO-10303-21;...", machines=[MK4], file_format="step",
                        step_converter=lambda step: box)  # fmt: skip
    assert report.status == "pass"
    assert report.file_format == "step"
    assert [c.name for c in report.checks][:2] == ["file_size", "readable"]


def test_a_step_file_the_converter_cannot_read_is_unreadable():
    def refuse(step: bytes) -> bytes:
        raise Rejected("OpenCascade could not parse it")

    report = dfm_report(b"ISO-10303-21;", machines=[MK4], file_format="step", step_converter=refuse)
    assert not report.readable
    assert (
        report.first_failure.message
        == "the STEP file could not be read: OpenCascade could not parse it"
    )
