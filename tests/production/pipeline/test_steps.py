"""The shared pipeline steps over values (production.pipeline.steps): no database."""

import json
from datetime import UTC, datetime

import pytest

from catalog import geometry
from microfactory.errors import Rejected
from production import runner
from production.pipeline import steps
from production.pipeline.steps import JobSoFar, Setup
from production.pipeline.validation import MachineLimits, ValidationReport, validate_part
from production.pipeline.values import (
    GeometryMeta,
    MaterialFacts,
    Paperwork,
    PartSpec,
    SlicerSettings,
    Stored,
    ToolpathMeta,
)
from production.routing import MachineFacts
from tests.production.test_runner import holed_box_stl

pytestmark = pytest.mark.cad

PLA = MaterialFacts("pla", "PLA", nozzle_temp_c=210, bed_temp_c=60, density_g_cm3=1.24)
MK4 = MachineFacts(
    key="mk4-1",
    name="MK4-1",
    site="North",
    model="Prusa MK4",
    process="fdm",
    state="idle",
    build_volume_mm=(250.0, 210.0, 220.0),
    nozzle_mm=0.4,
    flavour="marlin",
    materials=frozenset({"pla"}),
)
PAPERWORK = Paperwork(
    job_number="J-000001",
    station_url="http://factory.test/station/jobs/1/",
    order_reference="O-1",
    organisation="Acme",
    requested_by="req",
    due_date=None,
    priority="normal",
    quantity=1,
    printed_at=datetime(2026, 11, 25, 14, 0, tzinfo=UTC),
)


def through_json(value: dict) -> dict:
    return json.loads(json.dumps(value))


def mesh_part(stl: bytes) -> PartSpec:
    return PartSpec(
        family_name="Box",
        revision_number=1,
        revision_checksum="0" * 64,
        kind=geometry.STATIC,
        process="fdm",
        process_label="FDM 3D printing",
        material=PLA,
        model=stl,
        has_step=False,
    )


class Shelf:
    """A `reuse` that keeps what it was shown, as the worker's Artifact table does."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str], Stored] = {}
        self.asked: list[str] = []

    def __call__(self, kind: str, key: str) -> Stored | None:
        self.asked.append(kind)
        return self.files.get((kind, key))


def test_a_validation_report_comes_back_from_its_json_unchanged():
    report = validate_part(holed_box_stl(), machines=[steps.machine_limits(MK4)])
    assert report.orientation is not None and any(c.status == "warn" for c in report.checks)
    assert ValidationReport.from_json(through_json(report.to_json())) == report


def test_a_report_stored_before_it_named_capable_machines_counts_those_it_fits():
    stored = {"extents_mm": [20, 20, 10], "fits": ["mk4-1"], "checks": []}
    assert ValidationReport.from_json(stored).capable == ("mk4-1",)


def test_toolpath_and_geometry_meta_come_back_from_their_json_unchanged():
    meta = ToolpathMeta(
        engine="microfactory-fdm 0.3",
        layers=50,
        filament_mm=757.2,
        filament_g=2.26,
        estimated_time_s=562,
        layer_height_mm=0.2,
        nozzle_mm=0.4,
        perimeters=2,
        planned_for="mk4-1",
        profile_key=MK4.profile_key,
        orientation="as modelled (−Z down)",
        sliced_sha256="a" * 64,
        verification={"checks": [{"name": "layers", "status": "pass"}]},
    )
    assert ToolpathMeta.from_json(through_json(meta.to_json())) == meta
    built = GeometryMeta((20.0, 20.0, 10.0), 4000.0, 1600.0, "bwrap", "cadquery 2.8.0")
    assert GeometryMeta.from_json(through_json(built.to_json())) == built


def test_the_steps_run_in_order_without_a_database_and_reuse_what_is_stored():
    shelf = Shelf()
    setup = Setup(
        machines=(MK4,),
        build_limits=runner.build_limits(),
        validation_limits=runner.validation_limits(),
        reuse=shelf,
    )
    so_far = JobSoFar(part=mesh_part(holed_box_stl()), paperwork=PAPERWORK, setup=setup)
    for step in steps.STEPS:
        so_far = step.after(so_far)
    assert [s.name for s in steps.STEPS] == ["geometry", "validation", "toolpath", "traveler"]
    assert so_far.report is not None and so_far.report.capable == ("mk4-1",)
    planned, document = so_far.toolpath, so_far.traveler
    assert planned is not None and document is not None
    assert planned.repaired is not None and planned.meta.repaired  # the hole was closed
    assert document.pdf.startswith(b"%PDF-")
    assert document.traveler.machine == "Prusa MK4 class"
    assert not any(
        r.reused for r in (so_far.geometry, planned, document, planned.repaired) if r is not None
    )

    # What the worker stores, a second run finds and does not make again.
    assert so_far.geometry is not None
    built = so_far.geometry
    for kind, content in (("stl", built.stl), ("svg", built.svg.encode())):
        shelf.files[(kind, built.key)] = Stored(content, built.meta.to_json())
    shelf.files[("repaired", planned.repaired.key)] = Stored(planned.repaired.content)
    shelf.files[("gcode", planned.key)] = Stored(planned.gcode, planned.program_meta())
    again = JobSoFar(part=mesh_part(holed_box_stl()), paperwork=PAPERWORK, setup=setup)
    for step in steps.STEPS[:3]:
        again = step.after(again)
    assert again.geometry is not None and again.geometry.reused
    assert again.toolpath is not None and again.toolpath.reused
    assert again.toolpath.gcode == planned.gcode
    assert again.toolpath.meta == planned.meta


def test_the_worker_runs_the_shared_steps_in_their_order_and_leaves_routing_to_the_router():
    # Up to the verified G-code, one status at a time; the traveler is rendered beside routing
    # (runner.job_traveler_render, #19), so it is not one of the worker's status steps.
    assert [s.name for s in runner.STEPS.values()] == [s.name for s in steps.TO_ROUTING]
    assert [s.name for s in steps.STEPS] == [*(s.name for s in steps.TO_ROUTING), "traveler"]


def test_slicer_settings_override_the_profile_defaults():
    default = steps.fdm_profile(MK4, material=PLA)
    custom = steps.fdm_profile(
        MK4,
        material=PLA,
        settings=SlicerSettings(
            layer_height_mm=0.1, perimeters=4, top_layers=5, infill_percent=35, brim_width_mm=3
        ),
    )
    assert (default.layer_height_mm, default.perimeters, default.top_layers) == (0.2, 2, 3)
    assert (custom.layer_height_mm, custom.perimeters, custom.top_layers) == (0.1, 4, 5)
    assert (custom.bottom_layers, custom.infill_density, custom.brim_width_mm) == (3, 0.35, 3)


def test_a_layer_thicker_than_the_nozzle_is_refused():
    with pytest.raises(Rejected, match="more than the 0.4 mm nozzle"):
        steps.fdm_profile(MK4, material=PLA, settings=SlicerSettings(layer_height_mm=0.5))


@pytest.mark.parametrize(
    "values",
    [{"layer_height_mm": 0}, {"perimeters": -1}, {"infill_percent": 101}, {"brim_width_mm": -1}],
)
def test_impossible_slicer_settings_are_a_value_error(values):
    with pytest.raises(ValueError):
        SlicerSettings(**values)


def test_no_machine_with_the_material_is_a_refusal():
    petg = MaterialFacts("petg", "PETG", 240, 80, 1.27)
    with pytest.raises(Rejected, match="no machine has PETG loaded"):
        steps.dfm_machines([MK4], process="fdm", material=petg)
    assert steps.dfm_machines([MK4], process="fdm", material=PLA) == [
        MachineLimits("mk4-1", "fdm", (250.0, 210.0, 220.0), 0.4, "MK4-1")
    ]
