"""Process routes per order line (orders.routes, issue #16 point 5): a revision marks the
processes it can be made by; each line is quoted per allowed process with a capable machine
and routed to the one ready by its needed-by date at the lowest cost, else the soonest, with
the reason shown to the requester, who may choose another allowed route (API and page).

The scenarios are built so the answer is known: a printer with three days of FDM work waiting
in front of it, a mill with none; the part quoted on its envelope (20 x 10 x 5 mm, 350 mm³),
so no CAD runs here."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from catalog.models import Material, PartFamily, Process
from catalog.services import revision_create, revision_publish
from microfactory.errors import DomainError
from orders.models import Order, OrderEvent, OrderLine
from orders.quoting import MachiningRates, MaterialFacts, NoStock, Quote, quote_machined, stock_for
from orders.routes import RouteOption, choose, decide, reason_text, span_text
from orders.services import (
    LineRequest,
    OrderInvalid,
    OrderRequest,
    order_line_route_change,
    order_place,
)
from production import machines
from production.models import Job, Machine
from tests.builders import BLOCK_SCRIPT, make_machine, make_order, make_user

pytestmark = pytest.mark.usefixtures("no_broker")

HOUR = 3600.0
DAY = 24 * HOUR
PARAMS = {"width": 20, "height": 10, "hole_d": 5}


# --- the chooser on built options (pure) ----------------------------------------------------

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def option(process: str, material: str, name: str, total: str, ready_h: float | None):
    quote = Quote(
        currency="EUR",
        quantity=1,
        volume_mm3=350,
        mass_g=1,
        time_basis="estimate",
        machine_time_s=60,
        material_cost=Decimal("0.10"),
        machine_cost=Decimal("1.00"),
        setup_fee=Decimal("5.00"),
        discount=0,
        unit_price=Decimal(total) - 5,
        total=Decimal(total),
        machine="m",
        lead_time_s=None if ready_h is None else int(ready_h * HOUR),
        process=process,
    )
    ready = None if ready_h is None else NOW + timedelta(hours=ready_h)
    return RouteOption(process, material, name, quote, ready)


PRINTED = option("fdm", "petg", "PETG", "10.00", 5)
MILLED = option("cnc_mill", "al-6061", "6061", "14.10", 3)


def test_a_due_date_only_the_mill_meets_picks_the_mill_with_the_reason():
    deadline = NOW + timedelta(hours=4)
    assert choose([PRINTED, MILLED], deadline=deadline) is MILLED
    choice = decide([PRINTED, MILLED], deadline=deadline)
    assert choice.chosen_by == "chooser"
    assert choice.reason == (
        "milled in 6061: 2 h sooner and stiffer, ready by the needed-by date; "
        "printed in PETG would be 4.10 EUR cheaper but ready after the needed-by date"
    )


def test_a_relaxed_due_date_picks_the_cheaper_print_and_names_the_mill_as_sooner():
    deadline = NOW + timedelta(days=2)
    choice = decide([PRINTED, MILLED], deadline=deadline)
    assert choice.chosen is PRINTED
    assert choice.reason == (
        "printed in PETG: 4.10 EUR cheaper; milled in 6061 would be 2 h sooner and stiffer"
    )
    # No needed-by date: every route is in time, so the cheapest.
    assert choose([MILLED, PRINTED], deadline=None) is PRINTED


def test_no_route_in_time_picks_the_soonest():
    late = option("fdm", "pla", "PLA", "8.00", 30)
    assert choose([late, PRINTED, MILLED], deadline=NOW + timedelta(hours=1)) is MILLED


def test_a_route_without_a_machine_is_never_chosen_nor_named():
    lasered = option("laser", "acrylic", "acrylic", "6.00", None)
    choice = decide([PRINTED, lasered], deadline=None)
    assert choice.chosen is PRINTED
    assert choice.chosen_by == ""  # one process offered: no choice shown
    assert choice.reason == ""
    assert choose([lasered], deadline=None) is None


def test_the_requesters_choice_is_kept_and_said_so():
    choice = decide([PRINTED, MILLED], deadline=None, requested=("cnc_mill", "al-6061"))
    assert choice.chosen is MILLED and choice.chosen_by == "requester"
    assert choice.reason.startswith("your choice, milled in 6061: 2 h sooner and stiffer;")
    assert "printed in PETG would be 4.10 EUR cheaper" in choice.reason
    same = option("fdm", "petg-black", "black PETG", "10.00", 5)
    assert reason_text(PRINTED, [PRINTED, same], deadline=None, chosen_by="chooser") == (
        "printed in PETG: the same price and time as printed in black PETG"
    )


def test_spans_read_as_people_say_them():
    assert [span_text(s) for s in (30, 1500, 2 * HOUR, 2.5 * HOUR, 3 * DAY)] == [
        "1 min",
        "25 min",
        "2 h",
        "2.5 h",
        "3 days",
    ]


# --- quotes on stock (pure) -----------------------------------------------------------------

RATES = MachiningRates()
ALU = MaterialFacts(slug="al-6061", density_g_cm3=2.7, price_per_kg=Decimal("8.00"))


def test_milling_buys_the_thinnest_plate_that_holds_the_part_and_laser_the_matching_sheet():
    args = {"extents_mm": (20.0, 10.0, 5.0), "material_name": "6061", "rates": RATES}
    assert stock_for(process="cnc_mill", thicknesses_mm=[3, 10, 6], **args) == (30, 20, 6)
    assert stock_for(process="laser", thicknesses_mm=[3, 5], **args) == (30, 20, 5)
    with pytest.raises(NoStock, match=r"no 6061 sheet 5.0 mm thick \(stock: 3, 6 mm\)"):
        stock_for(process="laser", thicknesses_mm=[3, 6], **args)
    with pytest.raises(NoStock, match="no 6061 plate 5.0 mm thick or more"):
        stock_for(process="cnc_mill", thicknesses_mm=[3], **args)
    # The rule the planner applies: up to 0.1 mm thinner than the sheet, never thicker.
    thin = {**args, "extents_mm": (20.0, 10.0, 4.92)}
    assert stock_for(process="laser", thicknesses_mm=[5], **thin) == (30, 20, 5)
    thick = {**args, "extents_mm": (20.0, 10.0, 5.05)}
    with pytest.raises(NoStock):
        stock_for(process="laser", thicknesses_mm=[5], **thick)


def test_a_milled_quote_prices_the_plate_and_the_estimated_or_programmed_time():
    from orders.quoting import MachineOffer, Rates

    mill = MachineOffer(name="MILL", hourly_rate=Decimal("30.00"), queue_eta_s=0)
    common = {
        "process": "cnc_mill",
        "volume_mm3": 350.0,
        "extents_mm": (20.0, 10.0, 5.0),
        "quantity": 1,
        "material": ALU,
        "material_name": "6061",
        "thicknesses_mm": [5],
        "machines": [mill],
        "rates": Rates(),
        "machining": RATES,
    }
    estimated = quote_machined(**common)
    # 30 x 20 x 5 mm plate = 3 cm³ x 2.7 g/cm³ = 8.1 g; 8.1 g x 8 EUR/kg = 0.0648 EUR.
    assert estimated.mass_g == 8.1 and estimated.material_cost == Decimal("0.06")
    # 600 s set-up + (3000 - 350) mm³ / 20 mm³/s = 732.5 s, at 30 EUR/h = 6.10 EUR.
    assert estimated.time_basis == "estimate" and estimated.machine_time_s == 732.5
    assert estimated.machine_cost == Decimal("6.10")
    assert estimated.stock_mm == (30, 20, 5) and estimated.process == "cnc_mill"
    programmed = quote_machined(**common, program_time_s=1800)
    assert programmed.time_basis == "toolpath" and programmed.machine_cost == Decimal("15.00")
    lasered = quote_machined(**{**common, "process": "laser"})
    # Outline 2 x (20 + 10) = 60 mm + open area (200 - 70) mm² x 4 / 10 mm = 52 mm, at 8 mm/s.
    assert lasered.machine_time_s == round(120 + (60 + 52) / 8, 1)


# --- ordering with routes (database) --------------------------------------------------------


def material(slug, name, process, density, price, sheets=()):
    return Material.objects.create(
        slug=slug,
        name=name,
        process=process,
        density_g_cm3=Decimal(density),
        price_per_kg=Decimal(price),
        sheet_thicknesses_mm=list(sheets),
    )


@pytest.fixture
def world(db):
    """A cover part that can be printed in PETG, milled from 6061 or laser-cut from acrylic;
    a printer and a mill (no laser); a single-process block beside it."""
    petg = material("petg", "PETG", "fdm", "1.27", "25")
    alu = material("al-6061", "6061", "cnc_mill", "2.70", "8", sheets=[3, 5, 6, 10])
    acrylic = material("acrylic", "acrylic", "laser", "1.19", "6", sheets=[3, 5])
    family = PartFamily.objects.create(slug="cover", name="Cover")
    revision = revision_create(
        family=family,
        script=BLOCK_SCRIPT,
        parameter_schema=__import__("tests.builders", fromlist=["BLOCK_SCHEMA"]).BLOCK_SCHEMA,
        process="fdm",
        alternative_processes=["cnc_mill", "laser"],
        materials=[petg, alu, acrylic],
    )
    revision_publish(revision=revision)
    printer = make_machine("mk4-1", materials=[petg])
    mill = make_machine("mill-1", materials=[alu], model="GRBL mill")
    Machine.objects.filter(pk=mill.pk).update(process=Process.CNC_MILL, hourly_rate=30)
    return {"revision": revision, "printer": printer, "mill": Machine.objects.get(pk=mill.pk)}


def print_queue(user, *, seconds: float) -> None:
    """Another order's FDM job still in the pipeline, planned at `seconds` of printing: what a
    standard FDM line waits behind (orders.delivery)."""
    order, _ = order_place(
        user=user,
        request=OrderRequest(
            lines=[
                LineRequest(
                    part="cover",
                    parameters={"width": 30, "height": 12, "hole_d": 6},
                    material="petg",
                    quantity=1,
                    process="fdm",
                )
            ]
        ),
    )
    job = order.lines.get().jobs.get()
    Job.objects.filter(pk=job.pk).update(toolpath_meta={"estimated_time_s": seconds})


def place(user, *, material="petg", process="", due=None, **fields) -> Order:
    order, _ = order_place(
        user=user,
        request=OrderRequest(
            lines=[
                LineRequest(
                    part="cover", parameters=PARAMS, material=material, quantity=1, process=process
                )
            ],
            due_date=due,
            **fields,
        ),
    )
    return order


def today_plus(days: int):
    return timezone.localdate() + timedelta(days=days)


@pytest.mark.django_db
def test_a_due_date_only_the_mill_meets_routes_the_line_to_the_mill(world, user):
    print_queue(user, seconds=3 * DAY)
    line = place(user, due=today_plus(1)).lines.get()
    assert (line.process, line.material.slug, line.route_chosen_by) == (
        "cnc_mill",
        "al-6061",
        "chooser",
    )
    assert line.route_reason.startswith("milled in 6061: ")
    assert "sooner and stiffer, ready by the needed-by date" in line.route_reason
    assert "printed in PETG would be" in line.route_reason
    assert "EUR cheaper but ready after the needed-by date" in line.route_reason
    # Priced as milled: the plate and the mill's time at its rate.
    assert line.quote["process"] == "cnc_mill" and line.quote["stock_mm"] == [30, 20, 5]
    assert line.price == Decimal(line.quote["total"])
    offered = {o["process"]: o for o in line.route_options}
    assert offered["cnc_mill"]["chosen"] and not offered["fdm"]["chosen"]
    assert offered["laser"]["ready_at"] is None  # no laser: quoted, never offered
    assert Decimal(offered["fdm"]["total"]) < line.price
    # Its job goes to a machine of the route's process.
    job = line.jobs.get()
    Job.objects.filter(pk=job.pk).update(dfm_report={"extents_mm": [20, 10, 5]})
    job = Job.objects.get(pk=job.pk)
    assert machines.job_needs(job).process == "cnc_mill"


@pytest.mark.django_db
def test_a_relaxed_due_date_takes_the_cheaper_print_naming_the_mill_as_sooner(world, user):
    print_queue(user, seconds=3 * DAY)
    line = place(user, due=today_plus(10)).lines.get()
    assert (line.process, line.material.slug) == ("fdm", "petg")
    assert line.route_reason.startswith("printed in PETG: ")
    assert "EUR cheaper; milled in 6061 would be " in line.route_reason
    assert line.route_reason.endswith("sooner and stiffer")
    assert machines.job_needs  # the FDM job is routed as before (tests/production)


@pytest.mark.django_db
def test_a_part_with_one_process_shows_no_choice(world, user):
    from tests.builders import make_material, make_part

    make_part("block", materials=[make_material("pla")])
    make_machine("mk4-2", materials=[make_material("pla")])
    line = make_order(user=user).lines.get()
    assert (line.process, line.route_reason, line.route_options, line.route_chosen_by) == (
        "fdm",
        "",
        [],
        "",
    )


@pytest.mark.django_db
def test_a_process_with_no_capable_machine_is_not_offered(world, user):
    Machine.objects.filter(pk=world["mill"].pk).update(state="maintenance")
    print_queue(user, seconds=3 * DAY)
    line = place(user, due=today_plus(10)).lines.get()
    assert line.process == "fdm"
    assert line.route_reason == "" and line.route_chosen_by == ""  # nothing else on offer
    with pytest.raises(OrderInvalid) as refused:
        place(user, material="acrylic", process="laser")
    assert refused.value.errors == {
        "lines": {"0": {"process": ["no laser machine can make it now; choose fdm"]}}
    }


@pytest.mark.django_db
def test_the_requester_chooses_the_route_at_placement_and_pays_its_price(world, user):
    chosen = place(user, material="al-6061", process="cnc_mill").lines.get()
    auto = place(user).lines.get()  # no date, no queue: the print is cheaper
    assert (chosen.process, chosen.route_chosen_by) == ("cnc_mill", "requester")
    assert chosen.route_reason.startswith("your choice, milled in 6061")
    assert auto.process == "fdm" and chosen.price > auto.price


@pytest.mark.django_db
def test_bad_routes_are_refused_with_the_field_that_is_wrong(world, user):
    with pytest.raises(OrderInvalid) as refused:
        place(user, material="petg", process="cnc_mill")
    assert refused.value.errors["lines"]["0"]["material"] == [
        "PETG is not a CNC milling material; for cnc_mill choose 6061 (al-6061)"
    ]
    from tests.builders import make_material, make_part

    make_part("block", materials=[make_material("pla")])
    with pytest.raises(OrderInvalid) as refused:
        order_place(
            user=user,
            request=OrderRequest(
                lines=[
                    LineRequest(
                        part="block", parameters=PARAMS, material="pla", quantity=1, process="laser"
                    )
                ]
            ),
        )
    assert refused.value.errors["lines"]["0"]["process"] == [
        "'laser' is not a process this part is made by; choose fdm"
    ]
    # A thicker part than any acrylic sheet: no laser route for it.
    with pytest.raises(OrderInvalid) as refused:
        order_place(
            user=user,
            request=OrderRequest(
                lines=[
                    LineRequest(
                        part="cover",
                        parameters={"width": 20, "height": 10, "hole_d": 8},
                        material="acrylic",
                        quantity=1,
                        process="laser",
                    )
                ]
            ),
        )
    assert refused.value.errors["lines"]["0"]["material"] == [
        "no acrylic sheet 8.0 mm thick (stock: 3, 5 mm)"
    ]
    assert not Order.objects.filter(lines__revision__family__slug="block").exists()


@pytest.mark.django_db
def test_changing_the_route_of_a_line_not_started_changes_price_route_and_jobs(world, user):
    order = place(user)
    line = order.lines.get()
    old_job = line.jobs.get()
    assert line.process == "fdm"
    order_line_route_change(line=line, user=user, process="cnc_mill", material="al-6061")
    line.refresh_from_db()
    order.refresh_from_db()
    assert (line.process, line.material.slug, line.route_chosen_by) == (
        "cnc_mill",
        "al-6061",
        "requester",
    )
    assert line.route_reason.startswith("your choice, milled in 6061")
    assert line.price == Decimal(line.quote["total"]) and order.total_price == line.price
    assert Job.objects.get(pk=old_job.pk).status == Job.Status.CANCELLED
    new_job = line.jobs.exclude(pk=old_job.pk).get()
    assert new_job.status == Job.Status.QUEUED
    event = OrderEvent.objects.filter(line=line).last()
    assert "route changed by req: printed in PETG -> milled in 6061" in event.reason
    # The same route again, a process not allowed, a material of another process: refused.
    with pytest.raises(DomainError, match="already"):
        order_line_route_change(line=line, user=user, process="cnc_mill", material="al-6061")
    with pytest.raises(OrderInvalid) as refused:
        order_line_route_change(line=line, user=user, process="cnc_mill", material="petg")
    assert "material" in refused.value.errors
    # Started on a machine: it can no longer change.
    Job.objects.filter(pk=new_job.pk).update(status=Job.Status.RUNNING)
    with pytest.raises(DomainError, match="started"):
        order_line_route_change(line=line, user=user, process="fdm", material="petg")


@pytest.mark.django_db
def test_another_organisation_cannot_change_a_line(world, user):
    from tests.builders import make_organisation

    line = place(user).lines.get()
    stranger = make_user("stranger", organisation=make_organisation("other"))
    from orders.services import NotAllowed

    with pytest.raises(NotAllowed):
        order_line_route_change(line=line, user=stranger, process="cnc_mill", material="al-6061")


# --- API and page ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_places_with_a_route_shows_the_reason_and_changes_it(world, user, api):
    body = {"lines": [{"part": "cover", "parameters": PARAMS, "material": "petg", "quantity": 1}]}
    response = api.post("/api/v1/orders/", body, format="json")
    assert response.status_code == 201, response.content
    line = response.json()["lines"][0]
    assert line["process"] == "fdm" and line["route_chosen_by"] == "chooser"
    assert line["route_reason"].startswith("printed in PETG: ")
    assert {o["process"] for o in line["route_options"]} == {"fdm", "cnc_mill", "laser"}
    url = f"/api/v1/orders/{response.json()['id']}/lines/{line['id']}/route/"
    changed = api.post(url, {"process": "cnc_mill", "material": "al-6061"}, format="json")
    assert changed.status_code == 200, changed.content
    after = changed.json()["lines"][0]
    assert after["process"] == "cnc_mill" and after["material"] == "al-6061"
    assert Decimal(after["price"]) > Decimal(line["price"])
    assert after["route_reason"].startswith("your choice, milled in 6061")
    # Bad input: clear 4xx, never a 500.
    assert api.post(url, {"process": "cnc_mill", "material": "petg"}, format="json").json()[
        "errors"
    ]["material"] == ["PETG is not a CNC milling material; for cnc_mill choose 6061 (al-6061)"]
    for bad, status in (
        ({"process": "welding", "material": "petg"}, 400),
        ({"process": "laser", "material": "acrylic"}, 400),  # no laser machine
        ({"process": "cnc_mill", "material": "al-6061"}, 409),  # that route already
        ({}, 400),
    ):
        assert api.post(url, bad, format="json").status_code == status, bad
    other = api.post(
        f"/api/v1/orders/{response.json()['id']}/lines/999999/route/",
        {"process": "fdm", "material": "petg"},
        format="json",
    )
    assert other.status_code == 404
    placed = api.post(
        "/api/v1/orders/",
        {"lines": [{**body["lines"][0], "process": "laser", "material": "petg"}]},
        format="json",
    )
    assert placed.status_code == 400
    assert placed.json()["errors"]["lines"]["0"]["material"] == [
        "PETG is not a Laser cutting material; for laser choose acrylic (acrylic)"
    ]


@pytest.mark.django_db
def test_catalog_api_lists_the_processes_a_part_is_made_by(world, api):
    part = api.get("/api/v1/parts/cover/").json()
    assert part["revision"]["processes"] == ["fdm", "cnc_mill", "laser"]
    assert part["revision"]["alternative_processes"] == ["cnc_mill", "laser"]


@pytest.mark.django_db
def test_order_page_shows_the_reason_and_changes_the_route(world, user):
    order = place(user)
    line = order.lines.get()
    client = Client()
    client.force_login(user)
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert "How it is made: <strong>printed in PETG: " in page
    assert 'value="cnc_mill:al-6061"' in page
    assert 'value="laser:acrylic"' not in page  # no laser machine: not offered
    response = client.post(
        f"/orders/{order.pk}/route/", {"line": str(line.pk), "route": "cnc_mill:al-6061"}
    )
    assert response.status_code == 302
    line.refresh_from_db()
    assert line.process == "cnc_mill"
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert "your choice, milled in 6061" in page
    # A route the part does not allow: the page says why, nothing changes.
    client.post(f"/orders/{order.pk}/route/", {"line": str(line.pk), "route": "welding:petg"})
    line.refresh_from_db()
    assert line.process == "cnc_mill"
    assert client.post(f"/orders/{order.pk}/route/", {"line": "x", "route": ""}).status_code == 404


def test_stored_quotes_of_lines_before_routes_still_read():
    from orders.saved_quotes import quote_from_json

    stored = {k: v for k, v in PRINTED.quote.as_json().items() if k not in ("process", "stock_mm")}
    assert quote_from_json(stored).process == "fdm"
    assert OrderLine._meta.get_field("process").default == "fdm"


@pytest.mark.django_db
def test_another_organisations_line_is_a_404_on_the_api_and_page(world, user):
    from rest_framework.test import APIClient

    from tests.builders import make_organisation

    order = place(user)
    line = order.lines.get()
    stranger = make_user("stranger", organisation=make_organisation("other"))
    api = APIClient()
    api.force_authenticate(stranger)
    url = f"/api/v1/orders/{order.pk}/lines/{line.pk}/route/"
    assert (
        api.post(url, {"process": "cnc_mill", "material": "al-6061"}, format="json").status_code
        == 404
    )
    page = Client()
    page.force_login(stranger)
    response = page.post(
        f"/orders/{order.pk}/route/", {"line": line.pk, "route": "cnc_mill:al-6061"}
    )
    assert response.status_code == 404
    line.refresh_from_db()
    assert line.process == "fdm"


@pytest.mark.django_db
def test_the_quote_api_prices_the_material_by_its_process_and_lists_the_routes(world, api):
    line = {"part": "cover", "parameters": PARAMS, "material": "al-6061", "quantity": 1}
    body = api.post("/api/v1/quotes/", line, format="json").json()
    assert body["quote"]["process"] == "cnc_mill" and body["quote"]["stock_mm"] == [30, 20, 5]
    assert body["route_reason"].startswith("printed in PETG: ")
    assert {r["process"] for r in body["routes"]} == {"fdm", "cnc_mill", "laser"}
    thick = {**line, "material": "acrylic", "parameters": {**PARAMS, "hole_d": 8}}
    refused = api.post("/api/v1/quotes/", thick, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"]["material"] == [
        "no acrylic sheet 8.0 mm thick (stock: 3, 5 mm)"
    ]
