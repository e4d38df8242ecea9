"""Milled and laser-cut jobs through the real pipeline, in this process: the seed's parts in
plate and sheet stock, planned by the real planners, verified, stored with their rendering,
printed on their traveler, routed to a machine of their process and run at the station."""

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from unittest.mock import patch

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from pypdf import PdfReader

from catalog.models import Material, PartFamily
from catalog.parameters import defaults, parse_schema, validate_parameters
from catalog.parts import DEMO_PARTS, DemoPart
from catalog.previews import preview_build, preview_request
from catalog.services import revision_create, revision_publish
from microfactory.errors import Rejected
from orders.services import LineRequest, OrderInvalid, OrderRequest, order_place
from production import machines, station
from production.job_values import material_facts, traveler_for
from production.models import Artifact, Job, Machine
from production.pipeline import programs
from production.pipeline.traveler import traveler_html
from tests.builders import make_site, make_user
from tests.production.test_runner import STEPS, run_to_the_end

pytestmark = [pytest.mark.django_db, pytest.mark.cad]

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def demo_part(slug: str) -> DemoPart:
    return next(part for part in DEMO_PARTS if part.slug == slug)


def stock(slug: str, process: str, thicknesses: list[float], density: str) -> Material:
    return Material.objects.create(
        slug=slug,
        name=slug.title(),
        process=process,
        density_g_cm3=Decimal(density),
        price_per_kg=Decimal("8"),
        sheet_thicknesses_mm=thicknesses,
    )


def publish(part: DemoPart, material: Material) -> None:
    family = PartFamily.objects.create(slug=part.slug.replace("_", "-"), name=part.name)
    revision = revision_create(
        family=family,
        script=part.script,
        parameter_schema=part.schema,
        rules=part.rules,
        process=part.process,
        materials=[material],
        work_instructions=part.work_instructions,
        qc_checks=part.qc_checks,
    )
    revision_publish(revision=revision)


def laser_machine(material: Material, **settings: Any) -> Machine:
    machine = Machine.objects.create(
        slug="laser-1",
        name="Laser #1",
        site=make_site(),
        model="CO2 laser 60 W (GRBL 1.1)",
        process="laser",
        build_x_mm=300,
        build_y_mm=200,
        build_z_mm=8,
        flavour="grbl",
        kerf_mm=0.15,
        max_power_s=1000,
        laser_source="co2",
        **settings,
    )
    machine.materials_loaded.set([material])
    return machine


def measure(user, slug: str, values: dict[str, Any]) -> None:
    """The configuration's preview, built: what the requester sees on the part page before
    ordering, and what quotes a route on plate or sheet (orders.routes) before the job exists
    (no estimator is fitted here, and a guess from the parameters cannot tell the thickness)."""
    revision = PartFamily.objects.get(slug=slug).current_revision()
    canonical = validate_parameters(parse_schema(revision.parameter_schema), values)
    with patch("catalog.tasks.build_preview.apply_async"):
        preview, _ = preview_request(revision=revision, parameters=canonical, user=user)
    assert preview_build(preview_id=preview.pk) == "ready"


def order(user, part: DemoPart, material: str, **parameters: Any) -> Job:
    values = {**defaults(parse_schema(part.schema)), **parameters}
    measure(user, part.slug.replace("_", "-"), values)
    placed, _ = order_place(
        user=user,
        request=OrderRequest(
            lines=[
                LineRequest(
                    part=part.slug.replace("_", "-"),
                    parameters=values,
                    material=material,
                    quantity=1,
                )
            ]
        ),
    )
    return placed.lines.get().jobs.get()


def file_of(job: Job, kind: str) -> tuple[str, bytes]:
    artifact = Artifact.objects.get(job_links__job=job, job_links__kind=kind)
    return artifact.file.name.rsplit("/", 1)[-1], artifact.file.read()


@pytest.fixture
def acrylic() -> Material:
    return stock("acrylic", "laser", [3, 5], "1.19")


def test_a_laser_cut_cover_plate_is_planned_verified_and_routed_to_the_laser(user, acrylic):
    publish(demo_part("laser_cover_plate"), acrylic)
    laser = laser_machine(acrylic)

    job = run_to_the_end(order(user, demo_part("laser_cover_plate"), "acrylic").pk)

    assert job.status == Job.Status.ROUTED, job.reason
    assert job.machine == laser
    assert list(job.events.values_list("step", flat=True)) == STEPS
    name, gcode = file_of(job, Artifact.Kind.GCODE)
    assert name == "part.gcode"
    text = gcode.decode()
    assert "G21 G90 G17" in text and "M4 S650" in text and text.rstrip().endswith("M30")
    name, drawing = file_of(job, Artifact.Kind.RENDER)
    assert name == "cut-paths.svg" and drawing.startswith(b"<?xml")
    meta = job.toolpath_meta
    assert meta["process"] == "laser" and meta["planned_for"] == "laser-1"
    assert meta["estimated_time_s"] > 0
    program = meta["program"]
    assert program["stock"]["thickness_mm"] == 3 and program["stock"]["material"] == "acrylic"
    # A 100 x 60 mm plate: the sheet is the part plus its margins.
    assert program["stock"]["x_mm"] > 100 and program["stock"]["y_mm"] > 60
    (beam,) = program["tools"]
    assert (beam["kind"], beam["power_percent"], beam["feed_mm_min"]) == ("laser", 65, 900)
    assert {check["status"] for check in meta["verification"]["checks"]} == {"pass"}
    assert meta["verification"]["contours"] == 7  # six holes, then the outline

    traveler = traveler_for(job, printed_at=NOW)
    html = traveler_html(traveler)
    assert "Set-up: laser cutting" in html
    assert "65 %" in html and "900 mm/min" in html and "0.15 mm" in html
    assert "G54: X0 Y0 at the stock" in html
    assert "data:image/svg+xml;base64," in html  # the cut paths
    assert "Lay the sheet flat on the honeycomb" in html  # the revision's own instructions
    _, pdf = file_of(job, Artifact.Kind.TRAVELER)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "set-up: laser cutting" in text.lower() and "65 %" in text


def test_a_laser_part_with_no_sheet_of_its_thickness_is_refused_at_order_and_at_planning(user):
    five_only = stock("acrylic", "laser", [5], "1.19")
    publish(demo_part("laser_cover_plate"), five_only)
    laser_machine(five_only)

    with pytest.raises(OrderInvalid) as refusal:  # the route chooser finds no sheet
        order(user, demo_part("laser_cover_plate"), "acrylic")
    assert "sheet 3.0 mm thick (stock: 5 mm)" in str(refusal.value.errors)
    # Stock can change between the order and its planning: the planner refuses it too.
    with pytest.raises(Rejected, match="3 mm thick; .* stocked in 5 mm"):
        programs.stock_thickness(part_mm=3.0, material=material_facts(five_only), process="laser")


def test_a_laser_job_runs_at_the_station_to_qc(user, organisation, acrylic, settings):
    settings.STORAGES = {  # pages link site.css; tests run without collectstatic's manifest
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    publish(demo_part("laser_flat_bracket"), acrylic)
    laser = laser_machine(acrylic)
    job = run_to_the_end(order(user, demo_part("laser_flat_bracket"), "acrylic").pk)
    assert job.status == Job.Status.ROUTED, job.reason
    machines.machine_dispatch(machine_id=laser.pk, now=NOW, actor="test")
    operator = make_user("op", organisation=organisation, role="operator")
    client = Client()
    client.force_login(operator)

    page = client.get(f"/station/jobs/{job.pk}/").content.decode()
    assert "Lay the sheet flat on the honeycomb" in page
    for action in ("start", "finish"):
        assert client.post(f"/station/jobs/{job.pk}/{action}/").status_code == 302
    checks = station.job_traveler(Job.objects.get(pk=job.pk), now=NOW).qc_checks
    values = {f"m{i}": str(check.nominal_mm) for i, check in enumerate(checks)}
    client.post(f"/station/jobs/{job.pk}/measure/", values)
    client.post(f"/station/jobs/{job.pk}/pass/")

    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.qc_passed == 1
    reprint = client.get(f"/station/jobs/{job.pk}/traveler.pdf")
    assert reprint.status_code == 200
    assert b"".join(reprint.streaming_content).startswith(b"%PDF")

    # The same configuration again: its program is found stored, verified again, not planned.
    again = run_to_the_end(order(user, demo_part("laser_flat_bracket"), "acrylic").pk)
    assert again.status == Job.Status.ROUTED, again.reason
    for kind in (Artifact.Kind.GCODE, Artifact.Kind.RENDER):
        assert file_of(again, kind) == file_of(job, kind)
    assert again.toolpath_meta == job.toolpath_meta


# --- milling ----------------------------------------------------------------------------------


@pytest.fixture
def aluminium() -> Material:
    return stock("aluminium-6061", "cnc_mill", [3, 6, 10], "2.70")


def mill_machine(material: Material) -> Machine:
    machine = Machine.objects.create(
        slug="mill-1",
        name="Mill #1",
        site=make_site(),
        model="CNC 3020 mill (GRBL 1.1)",
        process="cnc_mill",
        build_x_mm=300,
        build_y_mm=200,
        build_z_mm=60,
        flavour="grbl",
        tool_numbers=[1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 21],
        spindle_max_rpm=24000,
    )
    machine.materials_loaded.set([material])
    return machine


def test_a_milled_cover_plate_is_planned_simulated_and_printed_with_its_set_up(user, aluminium):
    publish(demo_part("milled_cover_plate"), aluminium)
    mill = mill_machine(aluminium)

    job = run_to_the_end(order(user, demo_part("milled_cover_plate"), "aluminium-6061").pk)

    assert job.status == Job.Status.ROUTED, job.reason
    assert job.machine == mill
    assert list(job.events.values_list("step", flat=True)) == STEPS
    name, gcode = file_of(job, Artifact.Kind.GCODE)
    text = gcode.decode()
    assert name == "part.nc"
    assert "G21" in text and "G90" in text and text.rstrip().endswith(("M30", "M2"))
    name, picture = file_of(job, Artifact.Kind.RENDER)
    assert name == "simulated.png" and picture.startswith(b"\x89PNG")
    meta = job.toolpath_meta
    assert meta["process"] == "cnc_mill" and meta["planned_for"] == "mill-1"
    assert meta["estimated_time_s"] > 60
    program = meta["program"]
    # The part is 6 mm thick: milled from the 6 mm plate, with margins around its outline.
    assert program["stock"]["thickness_mm"] == 6 and program["stock"]["x_mm"] > 100
    assert program["dialect"] == "grbl" and program["work_offset"] == "G54"
    numbers = [tool["number"] for tool in program["tools"]]
    assert numbers and set(numbers) <= {1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 21}
    assert all(tool["spindle_rpm"] > 0 and tool["feed_mm_min"] > 0 for tool in program["tools"])
    operations = {op for tool in program["tools"] for op in tool["operations"]}
    assert "profile" in operations and "pocket" in operations  # the outline and the recess
    verification = meta["verification"]
    assert {check["status"] for check in verification["checks"]} == {"pass"}
    assert verification["max_gouge_mm"] <= 0.05 and verification["part_held"]
    assert verification["rs274"] == "accepted"

    html = traveler_html(traveler_for(job, printed_at=NOW))
    assert "Set-up: milling" in html and "G54: X0 Y0 at the stock" in html
    first = program["tools"][0]
    assert f"T{first['number']}" in html and first["name"] in html
    assert f"{first['spindle_rpm']} rpm" in html
    assert "data:image/png;base64," in html and "Simulated result" in html
    for step in program["setup_steps"]:
        assert step.replace("'", "&#x27;").replace('"', "&quot;") in html
    _, pdf = file_of(job, Artifact.Kind.TRAVELER)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "set-up: milling" in text.lower()


def test_a_milled_part_thicker_than_every_plate_is_refused_at_order_and_at_planning(user):
    thin = stock("aluminium-6061", "cnc_mill", [3, 6], "2.70")
    publish(demo_part("milled_flat_bracket"), thin)
    mill_machine(thin)

    with pytest.raises(OrderInvalid) as refusal:
        order(user, demo_part("milled_flat_bracket"), "aluminium-6061", thickness=8)
    assert "plate 8.0 mm thick or more (stock: 3, 6 mm)" in str(refusal.value.errors)
    with pytest.raises(Rejected, match="8 mm thick; .* only up to 6 mm"):
        programs.stock_thickness(part_mm=8.0, material=material_facts(thin), process="cnc_mill")
    # A 6 mm part comes from the 6 mm plate, a 4 mm one from it too (faced down).
    for part_mm in (6.0, 4.0):
        assert (
            programs.stock_thickness(
                part_mm=part_mm, material=material_facts(thin), process="cnc_mill"
            )
            == 6
        )


def test_a_milled_job_runs_end_to_end_at_the_station(user, organisation, aluminium, settings):
    """The flat bracket is 5 mm thick: milled from 6 mm plate, faced down first."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    publish(demo_part("milled_flat_bracket"), aluminium)
    mill = mill_machine(aluminium)
    job = run_to_the_end(order(user, demo_part("milled_flat_bracket"), "aluminium-6061").pk)
    assert job.status == Job.Status.ROUTED, job.reason
    program = job.toolpath_meta["program"]
    assert program["stock"]["thickness_mm"] == 6
    assert "facing" in {op for tool in program["tools"] for op in tool["operations"]}
    assert machines.machine_dispatch(machine_id=mill.pk, now=NOW, actor="test") == [job.pk]
    operator = make_user("op", organisation=organisation, role="operator")
    client = Client()
    client.force_login(operator)

    page = client.get(f"/station/jobs/{job.pk}/").content.decode()
    assert "Cut the holding tabs" in page  # the revision's instructions
    assert client.post(f"/station/jobs/{job.pk}/start/").status_code == 302
    mill.refresh_from_db()
    assert (mill.state, mill.current_job_id) == (Machine.State.BUSY, job.pk)
    assert client.post(f"/station/jobs/{job.pk}/finish/").status_code == 302
    checks = station.job_traveler(Job.objects.get(pk=job.pk), now=NOW).qc_checks
    assert [check.label for check in checks] == [
        "Leg A length", "Leg B length", "Thickness", "Hole diameter"
    ]  # fmt: skip
    values = {f"m{i}": str(check.nominal_mm) for i, check in enumerate(checks)}
    client.post(f"/station/jobs/{job.pk}/measure/", values)
    client.post(f"/station/jobs/{job.pk}/pass/")

    job.refresh_from_db()
    mill.refresh_from_db()
    assert (job.status, job.qc_passed, job.qc_scrapped) == (Job.Status.DONE, 1, 0)
    assert job.measurements == {check.label: check.nominal_mm for check in checks}
    assert mill.state == Machine.State.IDLE
    assert list(job.events.filter(actor="op").values_list("step", flat=True)) == [
        "start", "finish", "measure", "qc"
    ]  # fmt: skip
    reprint = client.get(f"/station/jobs/{job.pk}/traveler.pdf")
    pdf = b"".join(reprint.streaming_content)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "set-up: milling" in text.lower() and "T1" in text


def test_make_part_writes_a_laser_program_and_its_cut_paths(tmp_path, acrylic):
    publish(demo_part("laser_flat_bracket"), acrylic)
    laser_machine(acrylic)

    call_command(
        "make_part", "laser-flat-bracket", "--param", "thickness=3", "--out", str(tmp_path),
        stdout=io.StringIO(),
    )  # fmt: skip

    assert {"part.gcode", "cut-paths.svg", "traveler.pdf"} <= {p.name for p in tmp_path.iterdir()}
    report = json.loads((tmp_path / "report.json").read_text())
    toolpath = report["steps"]["toolpath"]
    assert toolpath["process"] == "laser" and toolpath["program"]["stock"]["thickness_mm"] == 3
    assert report["steps"]["routing"] == {"status": "ok", "machine": "laser-1", "site": "North"}


# --- the demo's cover plate on each of its routes ----------------------------------------------


def test_the_demo_cover_plate_is_printed_milled_or_laser_cut_as_its_route_says():
    """seed_demo's cover plate allows FDM, milling and laser cutting: lines that take the mill
    and the laser are planned by their planners and routed to the demo's mill and laser; a
    line left to the route chooser is made by the process it chose."""
    call_command("seed_demo", "--no-order", verbosity=0)
    requester = User.objects.get(username="requester")
    part = demo_part("cover_plate")
    values = defaults(parse_schema(part.schema))
    lines = [
        LineRequest(part="cover-plate", parameters=values, material="aluminium-6061",
                    quantity=1, process="cnc_mill"),
        LineRequest(part="cover-plate", parameters=values, material="acrylic", quantity=1,
                    process="laser"),
        LineRequest(part="cover-plate", parameters=values, material="petg", quantity=1),
    ]  # fmt: skip
    # The requester looked at the part first (its preview measures it: the sheet a laser route
    # needs is known before anything is ordered; a fresh seed has no fitted estimator yet).
    measure(requester, "cover-plate", values)
    placed, _ = order_place(user=requester, request=OrderRequest(lines=lines))

    made = []
    for line in placed.lines.order_by("pk"):
        job = run_to_the_end(line.jobs.get().pk)
        assert job.status == Job.Status.ROUTED, (line.process, job.reason)
        assert job.machine is not None and job.machine.process == line.process
        made.append((line.process, job.machine.slug, job.toolpath_meta))
    milled, cut, chosen = made
    assert milled[:2] == ("cnc_mill", "mill-1") and cut[:2] == ("laser", "laser-1")
    assert milled[2]["program"]["stock"]["thickness_mm"] == 3  # the 3 mm plate
    assert cut[2]["program"]["stock"]["thickness_mm"] == 3  # the 3 mm sheet
    # Left to the chooser: made by the process (and in the material) its route names.
    assert chosen[2].get("process", "fdm") == chosen[0]
