"""The cost of a job and of an order (production/costing.py, production/job_costs.py)."""

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from production import costing, job_costs, station
from production.costing import Basis, CostRates, JobFacts, Stamp
from production.models import Job, Machine, Plate
from tests.builders import login_with_mfa, make_machine, make_order, make_part, make_user
from tests.production.test_station import GOOD, checks_of, make_station_job
from tests.production.test_toolpath_engines_runner import advance_until

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
RATES = CostRates(
    energy_per_kwh=Decimal("0.30"),
    labour_per_hour=Decimal("45.00"),
    touch_min=2.0,
    gap_max_min=15.0,
    handling_min=6.0,
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def facts(**changes: object) -> JobFacts:
    base = JobFacts(
        job_id=1,
        number="J-000001",
        line_id=1,
        status="done",
        ended=True,
        quantity=2,
        scrapped=0,
        replaces="",
        material="PLA",
        filament_g=10.0,
        price_per_kg=Decimal("25.00"),
        machine="MK4-1",
        hourly_rate=Decimal("6.00"),
        power_w=120,
        manual=True,
        planned_time_s=1800.0,
        stamps=(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


# A manual machine's run: 30 min, paused 10 min, 60 min more; measured 4 min after the finish,
# passed 2 min later.
RUN = (
    Stamp("order", "", "queued", at(-600)),
    Stamp("routing", "traveler_ready", "routed", at(-60)),
    Stamp("start", "routed", "running", at(0)),
    Stamp("pause", "running", "paused", at(30)),
    Stamp("continue", "paused", "running", at(40)),
    Stamp("finish", "running", "awaiting_qc", at(100)),
    Stamp("measure", "awaiting_qc", "awaiting_qc", at(104)),
    Stamp("qc", "awaiting_qc", "done", at(106)),
)


# --- pure: no database ---------------------------------------------------------------------


def test_each_part_of_the_cost_comes_from_its_inputs() -> None:
    cost = costing.job_cost(facts(stamps=RUN), rates=RATES, now=at(500))
    assert cost.basis == Basis.ACTUAL
    # 10 g x 2 copies x 25 EUR/kg
    assert cost.material.amount == Decimal("0.50")
    # the plan's time: 1800 s x 2 copies = 1 h at 6 EUR/h
    assert (cost.planned_time_s, cost.machine.amount) == (3600.0, Decimal("6.00"))
    # running 30 + 60 min (the pause is not): 120 W x 1.5 h = 0.18 kWh x 0.30
    assert cost.actual_time_s == 90 * 60
    assert cost.energy.amount == Decimal("0.05")
    assert "1.50 h running" in cost.energy.inputs
    # start 2 (first tap), pause 2 (30 min later: waiting), continue 10, finish 2 (60 min
    # later), measure 4, QC 2 = 22 min x 45 EUR/h
    assert [(s.step, s.minutes, s.measured) for s in cost.labour_steps] == [
        ("start", 2.0, False),
        ("pause", 2.0, False),
        ("continue", 10.0, True),
        ("finish", 2.0, False),
        ("measure", 4.0, True),
        ("qc", 2.0, True),
    ]
    assert cost.labour.amount == Decimal("16.50")
    assert cost.total == Decimal("23.05")


def test_a_networked_machines_own_reports_are_not_labour() -> None:
    cost = costing.job_cost(facts(stamps=RUN, manual=False), rates=RATES, now=at(500))
    assert [s.step for s in cost.labour_steps] == ["measure", "qc"]
    assert cost.labour_minutes == 2.0 + 2.0  # the measurement: first tap; QC 2 min later


def test_a_job_not_run_yet_is_an_estimate_and_one_that_ended_unrun_cost_nothing() -> None:
    waiting = costing.job_cost(
        facts(status="routed", ended=False, stamps=RUN[:2]), rates=RATES, now=at(0)
    )
    assert waiting.basis == Basis.ESTIMATE
    assert waiting.actual_time_s is None
    assert (waiting.material.amount, waiting.machine.amount) == (Decimal("0.50"), Decimal("6.00"))
    assert waiting.energy.amount == Decimal("0.04")  # 120 W x the planned hour x 0.30
    assert waiting.labour_minutes == 6.0  # the fixed handling
    cancelled = costing.job_cost(
        facts(status="cancelled", ended=True, stamps=RUN[:2]), rates=RATES, now=at(0)
    )
    assert cancelled.basis == Basis.NONE
    assert cancelled.total == Decimal(0)


def test_a_run_still_going_counts_up_to_now() -> None:
    cost = costing.job_cost(
        facts(status="running", ended=False, stamps=RUN[:3]), rates=RATES, now=at(45)
    )
    assert cost.actual_time_s == 45 * 60


def test_scrapped_copies_stay_on_the_job_that_made_them() -> None:
    made = facts(stamps=RUN, quantity=4, scrapped=1)
    cost = costing.job_cost(made, rates=RATES, now=at(500))
    # Material and machine time for all 4 copies made, scrapped one included.
    assert cost.material.amount == Decimal("1.00")
    assert cost.machine.amount == Decimal("12.00")
    assert cost.scrap == (
        (cost.material.amount + cost.machine.amount + cost.energy.amount) / 4
    ).quantize(Decimal("0.01"))


def test_an_orders_cost_sums_its_jobs_and_remakes_against_the_quote() -> None:
    original = costing.job_cost(facts(stamps=RUN, quantity=2, scrapped=1), rates=RATES, now=at(500))
    remake = costing.job_cost(
        facts(job_id=2, number="J-000002", quantity=1, replaces="J-000001", stamps=RUN),
        rates=RATES,
        now=at(500),
    )
    line = costing.LinePrice(
        line_id=1, label="2 x Block", quantity=2, price=Decimal("40.00"), jobs=2
    )
    order = costing.order_cost(
        order_id=7, number="O-000007", currency="EUR", lines=[line], jobs=[remake, original]
    )
    assert [job.number for job in order.jobs] == ["J-000001", "J-000002"]
    assert order.cost == original.total + remake.total
    assert order.margin == Decimal("40.00") - order.cost
    assert order.margin_percent == round(float(order.margin / Decimal(40) * 100), 1)
    assert order.scrap == original.scrap
    # A viewer who sees only one of the line's two jobs gets its cost, not a margin.
    partial = costing.order_cost(
        order_id=7, number="O-000007", currency="EUR", lines=[line], jobs=[original]
    )
    assert (partial.cost, partial.margin, partial.margin_percent) == (original.total, None, None)


def test_a_plate_is_shared_by_copy_time_and_copy_grams() -> None:
    shares = costing.plate_shares(
        [
            costing.OnPlate(job_id=1, copies=3, copy_time_s=600, copy_g=2.0),
            costing.OnPlate(job_id=2, copies=2, copy_time_s=1200, copy_g=5.0),
        ]
    )
    # Time: 3 x 600 = 1800 s against 2 x 1200 = 2400 s; grams: 6 g against 10 g.
    assert shares == {1: (pytest.approx(3 / 7), 0.375), 2: (pytest.approx(4 / 7), 0.625)}
    # Nothing known of the copies: shared by copies.
    unknown = costing.plate_shares([costing.OnPlate(1, 3, 0, 0), costing.OnPlate(2, 1, 0, 0)])
    assert unknown == {1: (0.75, 0.75), 2: (0.25, 0.25)}


def test_a_jobs_cost_on_a_plate_is_its_share_of_the_plates_time_and_filament() -> None:
    plate = costing.PlateShare(
        plate="P-000012", copies=3, time_share=0.25, material_share=0.5,
        machine_s=3600.0 * 4, filament_g=40.0,
        started_at=at(0), finished_at=at(240),
    )  # fmt: skip
    cost = costing.job_cost(
        facts(quantity=3, stamps=RUN[:3], status="running", ended=False, plates=(plate,)),
        rates=RATES,
        now=at(500),
    )
    assert cost.planned_time_s == 3600.0  # a quarter of the plate's 4 h
    assert cost.machine.amount == Decimal("6.00")  # 1 h x 6 EUR/h
    assert cost.material.amount == Decimal("0.50")  # half of 40 g x 25 EUR/kg
    assert cost.actual_time_s == 60 * 60  # a quarter of the plate's 4 h run
    assert cost.energy.amount == Decimal("0.04")  # 120 W x 1 h x 0.30
    assert "25% of P-000012 (3 copies, 4.00 h with setup)" in cost.machine.inputs
    assert "50% of P-000012 (3 copies, 40 g)" in cost.material.inputs


def test_a_machine_without_its_own_power_draws_its_processs() -> None:
    assert costing.power_w(configured=None, process="fdm") == costing.DEFAULT_POWER_W["fdm"]
    assert costing.power_w(configured=250, process="fdm") == 250
    assert costing.power_w(configured=None, process="waterjet") == costing.FALLBACK_POWER_W


# --- against the database ---------------------------------------------------------------------


def quoted_on_one_plate(job: Job, *, setup_s: float = 300.0) -> None:
    """The job's line quoted as its copies on one plate (the builders quote one copy)."""
    line = job.line
    line.quote = {**line.quote, "quantity": job.quantity, "plates": 1,
                  "copies_per_plate": job.quantity, "plate_setup_s": setup_s}  # fmt: skip
    line.save(update_fields=["quote"])


@pytest.mark.django_db
def test_the_station_timestamps_give_machine_energy_and_labour(user, settings) -> None:
    settings.MF_ENERGY_EUR_PER_KWH = Decimal("0.40")
    settings.MF_LABOUR_EUR_PER_HOUR = Decimal("60")
    machine = make_machine("mk4-1")
    Machine.objects.filter(pk=machine.pk).update(hourly_rate=Decimal("4.00"), power_w=200)
    operator = make_user("op", organisation=user.memberships.get().organisation, role="operator")
    job = make_station_job(user=user, machine=machine, quantity=2)
    Job.objects.filter(pk=job.pk).update(
        toolpath_meta={"filament_g": 7.5, "estimated_time_s": 2700, "layers": 50}
    )
    quoted_on_one_plate(job)
    station.job_start(job_id=job.pk, operator=operator, now=at(0))
    station.job_pause(job_id=job.pk, operator=operator, now=at(20))
    station.job_continue(job_id=job.pk, operator=operator, now=at(25))
    station.job_finish(job_id=job.pk, operator=operator, now=at(85))
    checks = checks_of(job)
    station.job_measure(job_id=job.pk, values=GOOD, checks=checks, operator=operator, now=at(88))
    station.job_qc(
        job_id=job.pk, passed=2, scrapped=0, checks=checks, operator=operator, now=at(91)
    )

    (cost,) = job_costs.job_costs(Job.objects.filter(pk=job.pk), now=at(1000))
    assert cost.material.amount == Decimal("0.38")  # 7.5 g x 2 x 25 EUR/kg = 0.375
    # Not on a plate: the quote's plate plan, one plate's setup + 2 copies of 2700 s, x 4 EUR/h
    assert cost.planned_time_s == 300 + 5400 and cost.machine.amount == Decimal("6.33")
    assert cost.actual_time_s == 80 * 60
    assert cost.energy.amount == Decimal("0.11")  # 200 W x 80 min = 0.2667 kWh x 0.40
    # start 2, pause 2 (20 min later), continue 5, finish 2 (60 min later), measure 3, QC 3
    assert cost.labour_minutes == 17.0
    assert cost.labour.amount == Decimal("17.00")


@pytest.mark.django_db
@pytest.mark.cad
def test_a_real_job_of_three_copies_costs_its_real_plates_grams_and_time(user, settings) -> None:
    make_part("block")
    make_machine()
    order = make_order(user=user, quantity=3)
    job = advance_until(order.lines.get().jobs.get().pk)
    assert job.status == Job.Status.ROUTED, job.reason
    (plate,) = Plate.objects.filter(copies__job=job).distinct()  # the 3 copies sliced together
    gcode = plate.gcode.file.read().decode()
    grams = float(re.search(r"; filament used \[g\] = ([\d.]+)", gcode).group(1))
    assert grams > 1

    (cost,) = job_costs.job_costs(Job.objects.filter(pk=job.pk), now=timezone.now())
    price = job.line.material.price_per_kg
    expected = (Decimal(str(grams)) * price / 1000).quantize(Decimal("0.01"))
    assert abs(cost.material.amount - expected) <= Decimal("0.01")  # the plate keeps 2 decimals
    assert cost.basis == Basis.ESTIMATE  # routed, not run
    setup = settings.ORDER_QUOTE_RATES.plate_setup_s
    assert cost.planned_time_s == setup + plate.estimated_time_s > setup
    assert cost.machine.amount > 0 or job.machine.hourly_rate == 0


@pytest.mark.django_db
def test_a_remake_has_its_own_cost_and_the_order_sums_both(user) -> None:
    machine = make_machine("mk4-1")
    operator = make_user("op", organisation=user.memberships.get().organisation, role="operator")
    job = make_station_job(user=user, machine=machine, quantity=2)
    Job.objects.filter(pk=job.pk).update(toolpath_meta={"filament_g": 10, "estimated_time_s": 600})
    station.job_start(job_id=job.pk, operator=operator, now=at(0))
    station.job_finish(job_id=job.pk, operator=operator, now=at(20))
    remake = station.job_qc(
        job_id=job.pk,
        passed=1,
        scrapped=1,
        checks=(),
        reason="warped",
        operator=operator,
        now=at(22),
    )
    assert remake is not None  # queued: no G-code of its own yet
    order_id = job.line.order_id

    order = job_costs.order_costs(order_ids=[order_id], now=at(30))[order_id]
    first, second = order.jobs
    assert (first.number, second.number, second.replaces) == (job.number, remake.number, job.number)
    assert first.material.amount == Decimal("0.50")  # both copies made, one scrapped
    assert first.scrap > 0
    # The remake's one copy, estimated from the G-code of the job it remakes, run as the
    # quote's plate plan (a plate's setup, 300 s, then the copy); at the default hourly rate
    # (the machine has none of its own), as quotes count it.
    assert second.basis == Basis.ESTIMATE
    assert second.material.amount == Decimal("0.25")
    assert second.machine.amount == Decimal("1.50")  # (300 + 600) s x 6.00 EUR/h
    assert order.cost == first.total + second.total
    line_price = job.line.price
    assert order.price == line_price and order.margin == line_price - order.cost


@pytest.mark.django_db
def test_costs_of_many_jobs_read_a_fixed_number_of_queries(user, django_assert_num_queries) -> None:
    machine = make_machine("mk4-1")
    operator = make_user("op", organisation=user.memberships.get().organisation, role="operator")
    jobs = [make_station_job(user=user, machine=machine) for _ in range(12)]
    for i, job in enumerate(jobs[:6]):
        station.job_start(job_id=job.pk, operator=operator, now=at(100 * i))
        station.job_finish(job_id=job.pk, operator=operator, now=at(100 * i + 30))
    order_ids = {job.line.order_id for job in jobs}
    with django_assert_num_queries(4):  # jobs, events, spool bookings, plate copies (none)
        costs = job_costs.job_costs(Job.objects.filter(pk__in=[j.pk for j in jobs]), now=at(2000))
    assert len(costs) == 12
    assert sum(cost.basis == Basis.ACTUAL for cost in costs) == 6
    with django_assert_num_queries(6):  # orders, lines, and the jobs' four
        orders = job_costs.order_costs(order_ids=order_ids, now=at(2000))
    assert len(orders) == 12


@pytest.mark.django_db
def test_five_copies_on_one_plate_cost_less_each_than_one_alone_and_are_the_plates_figures(
    user, settings
) -> None:
    from tests.production.test_plating import make_plate, plated_job

    settings.ORDER_QUOTE_RATES = replace(settings.ORDER_QUOTE_RATES, plate_setup_s=300.0)
    five = plated_job(user, quantity=5)  # its G-code: 600 s and 2 g a copy
    plate = make_plate([five], estimated_time_s=2700)  # 5 copies sliced together; 10 g
    alone = plated_job(user, quantity=1)
    quoted_on_one_plate(alone, setup_s=300.0)

    on_plate, single = job_costs.job_costs(Job.objects.filter(pk__in=[five.pk, alone.pk]), now=T0)

    rate = settings.ORDER_QUOTE_RATES.default_hourly_rate  # not routed: the default rate
    price = five.line.material.price_per_kg
    # The plate's figures: its setup and program time, its program's grams.
    assert on_plate.planned_time_s == 300 + plate.estimated_time_s
    assert on_plate.machine.amount == (Decimal(300 + 2700) / 3600 * rate).quantize(Decimal("0.01"))
    assert on_plate.material.amount == (Decimal("10.0") * price / 1000).quantize(Decimal("0.01"))
    # One copy alone: a plate's setup of its own and its G-code's time (the quote's plan).
    assert single.planned_time_s == 300 + 600
    assert on_plate.machine.amount / 5 < single.machine.amount
    assert on_plate.total / 5 < single.total


@pytest.mark.django_db
def test_two_orders_jobs_on_one_plate_add_up_to_it_and_share_its_run(
    user, settings, django_assert_num_queries
) -> None:
    from tests.production.test_plating import make_plate, plated_job

    settings.ORDER_QUOTE_RATES = replace(settings.ORDER_QUOTE_RATES, plate_setup_s=300.0)
    small = plated_job(user, quantity=3)  # 600 s and 2 g a copy
    large = plated_job(user, quantity=2)
    Job.objects.filter(pk=large.pk).update(
        toolpath_meta={**large.toolpath_meta, "estimated_time_s": 1200, "filament_g": 5.0}
    )
    plate = make_plate([small, large], estimated_time_s=3900)  # 10 g
    Plate.objects.filter(pk=plate.pk).update(started_at=at(0), finished_at=at(70))
    jobs = Job.objects.filter(pk__in=[small.pk, large.pk]).order_by("pk")

    with django_assert_num_queries(5):  # jobs, events, bookings, their copies, the plates'
        first, second = job_costs.job_costs(jobs, now=at(100))

    # Time shared 1800 : 2400 s of copies, grams 6 : 10 g.
    assert first.planned_time_s == pytest.approx((300 + 3900) * 3 / 7)
    assert first.planned_time_s + second.planned_time_s == pytest.approx(300 + 3900)
    assert first.actual_time_s == pytest.approx(70 * 60 * 3 / 7)
    assert second.actual_time_s == pytest.approx(70 * 60 * 4 / 7)
    price = small.line.material.price_per_kg
    grams = Decimal("10.0") * price / 1000
    assert first.material.amount == (grams * 3 / 8).quantize(Decimal("0.01"))
    assert second.material.amount == (grams * 5 / 8).quantize(Decimal("0.01"))
    # A job read on its own (the station's job page) costs the same, in two more queries.
    alone = Job.objects.select_related(*job_costs.COST_RELATED).get(pk=small.pk)
    with django_assert_num_queries(4):  # events, bookings, its copies, the plate's
        facts_alone = job_costs.job_facts(alone)
    assert costing.job_cost(facts_alone, rates=job_costs.cost_rates(), now=at(100)) == first


# --- who sees costs ---------------------------------------------------------------------------


@pytest.fixture
def _plain_static(settings) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("_plain_static")
def test_the_factorys_manager_sees_costs_and_margin_and_its_operator_does_not(user) -> None:
    factory = user.memberships.get().organisation  # the builders' in-house factory is acme
    machine = make_machine("mk4-1")
    job = make_station_job(user=user, machine=machine)
    Job.objects.filter(pk=job.pk).update(toolpath_meta={"filament_g": 12, "estimated_time_s": 900})
    manager, operator = Client(), Client()
    manager.force_login(make_user("boss", organisation=factory, role="manager"))
    operator.force_login(make_user("op", organisation=factory, role="operator"))

    page = manager.get(f"/station/jobs/{job.pk}/").content.decode()
    assert 'id="costs"' in page and "12 g x 1 copies x 25.00 EUR/kg" in page
    costs = manager.get(f"/station/orders/{job.line.order_id}/costs/")
    assert costs.status_code == 200
    assert "Margin" in costs.content.decode() and job.number in costs.content.decode()

    page = operator.get(f"/station/jobs/{job.pk}/").content.decode()
    assert 'id="costs"' not in page and "EUR/kg" not in page
    assert operator.get(f"/station/orders/{job.line.order_id}/costs/").status_code == 403


@pytest.mark.django_db
@pytest.mark.usefixtures("_plain_static")
def test_a_manager_sees_which_share_of_which_plate_a_job_carries(user, settings) -> None:
    from tests.production.test_plating import make_plate, plated_job

    settings.ORDER_QUOTE_RATES = replace(settings.ORDER_QUOTE_RATES, plate_setup_s=300.0)
    factory = user.memberships.get().organisation
    job = plated_job(user, quantity=3)
    plate = make_plate([job], estimated_time_s=2700)
    Job.objects.filter(pk=job.pk).update(machine=make_machine("mk4-1"), status="routed")
    manager = Client()
    manager.force_login(make_user("boss", organisation=factory, role="manager"))

    page = manager.get(f"/station/jobs/{job.pk}/").content.decode()

    assert f"100% of {plate.number} (3 copies, 10 g)" in page  # material
    assert f"100% of {plate.number} (3 copies, 0.83 h with setup)" in page  # 300 + 2700 s


@pytest.mark.django_db
def test_the_admin_shows_each_orders_cost_and_margin(user, settings) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    job = make_station_job(user=user, machine=make_machine("mk4-1"))
    Job.objects.filter(pk=job.pk).update(toolpath_meta={"filament_g": 12, "estimated_time_s": 900})
    staff = make_user("staff", organisation=user.memberships.get().organisation)
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client = Client()
    login_with_mfa(client, staff)
    (cost,) = job_costs.job_costs(Job.objects.filter(pk=job.pk), now=timezone.now())
    listing = client.get("/admin/orders/order/").content.decode()
    assert f"{cost.total} EUR" in listing
    detail = client.get(f"/admin/orders/order/{job.line.order_id}/change/").content.decode()
    assert f"{job.number}: {cost.total}" in detail
    jobs = client.get("/admin/production/job/").content.decode()
    assert f"{cost.total} EUR (estimate)" in jobs


@pytest.mark.django_db
def test_the_api_gives_a_manager_the_jobs_cost_with_its_inputs(user) -> None:
    factory = user.memberships.get().organisation
    job = make_station_job(user=user, machine=make_machine("mk4-1"), quantity=2)
    Job.objects.filter(pk=job.pk).update(toolpath_meta={"filament_g": 10, "estimated_time_s": 600})
    quoted_on_one_plate(job, setup_s=0.0)
    api = APIClient()
    api.force_authenticate(make_user("boss", organisation=factory, role="manager"))
    body = api.get(f"/api/v1/jobs/{job.pk}/cost/").json()
    assert body["material"] == {"amount": "0.50", "inputs": "10 g x 2 copies x 25.00 EUR/kg (PLA)"}
    assert (body["basis"], body["actual_time_s"], body["planned_time_s"]) == (
        "estimate",
        None,
        1200,
    )
    assert body["total"] == str(
        sum(Decimal(body[k]["amount"]) for k in ("material", "machine", "energy", "labour"))
    )
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/jobs/{job_id}/cost/" in schema


@pytest.mark.django_db
def test_a_manager_sets_a_machines_power_and_a_bad_value_is_refused(user) -> None:
    factory = user.memberships.get().organisation
    machine = make_machine("mk4-1")
    api = APIClient()
    api.force_authenticate(make_user("boss", organisation=factory, role="manager"))
    path = f"/api/v1/machines/{machine.slug}/"
    assert api.get(path).json()["power_w"] is None  # the process's default
    assert api.patch(path, {"power_w": 95}, format="json").status_code == 200
    assert api.patch(path, {"power_w": -5}, format="json").status_code == 400
    assert Machine.objects.get(pk=machine.pk).power_w == 95


@pytest.mark.django_db
def test_operators_see_no_machine_rate_in_the_api_and_managers_do(user) -> None:
    factory = user.memberships.get().organisation
    machine = make_machine("mk4-1")
    machine.hourly_rate = Decimal("12.50")
    machine.save()
    seen = {}
    for role in ("operator", "manager"):
        api = APIClient()
        api.force_authenticate(make_user(role, organisation=factory, role=role))
        listed = api.get("/api/v1/machines/").json()
        detail = api.get(f"/api/v1/machines/{machine.slug}/").json()
        seen[role] = (listed[0]["hourly_rate"], detail["hourly_rate"])
    assert seen == {"operator": (None, None), "manager": ("12.50", "12.50")}


@pytest.mark.django_db
@pytest.mark.usefixtures("_plain_static")
def test_the_admin_lists_read_costs_in_a_fixed_number_of_queries(user) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    machine = make_machine("mk4-1")
    staff = make_user("staff", organisation=user.memberships.get().organisation)
    staff.is_staff = staff.is_superuser = True
    staff.save()
    client = Client()
    login_with_mfa(client, staff)

    def queries(path: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    make_station_job(user=user, machine=machine)
    few = {path: queries(path) for path in ("/admin/orders/order/", "/admin/production/job/")}
    for _ in range(5):
        make_station_job(user=user, machine=machine)
    many = {path: queries(path) for path in few}
    assert many == few


@pytest.mark.django_db
def test_the_material_is_priced_at_the_lot_its_filament_was_booked_against(user) -> None:
    from production.models import Spool, SpoolBooking

    machine = make_machine("mk4-1")
    job = make_station_job(user=user, machine=machine)
    catalog_price = job.line.material.price_per_kg
    assert job_costs.material_price_per_kg(job) == catalog_price  # nothing booked yet
    lot = Spool.objects.create(
        material=job.line.material,
        lot_number="LOT-7",
        initial_g=1000,
        remaining_g=1000,
        price_per_kg=catalog_price + Decimal("7.50"),
        site=machine.site,
    )
    SpoolBooking.objects.create(spool=lot, job=job, kind="start", grams=12, at=at(0), by="op")
    (read,) = job_costs.with_cost_facts(Job.objects.filter(pk=job.pk))
    assert job_costs.material_price_per_kg(read) == catalog_price + Decimal("7.50")
    assert job_costs.material_price_per_kg(Job.objects.get(pk=job.pk)) == lot.price_per_kg
