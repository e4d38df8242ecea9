"""Quotes from the plate plan (#13.5): copies share a plate's setup fee and time, the lead time
is the plan's, and a quantity needing more plates than one plan holds is refused when ordered."""

import re
from dataclasses import replace
from decimal import Decimal

import pytest
from django.test import Client
from shapely.geometry import Point, Polygon, box

from orders.models import Order
from orders.quoting import (
    MachineOffer,
    MaterialFacts,
    Rates,
    copies_per_plate,
    plate_plan,
    quote_line,
    requote,
)
from production.plates.arrange import CopyToPlace, arrange, bed_for
from tests.builders import make_machine, make_part
from tests.production.toolpath.gcode_reader import make_profile

PLA = MaterialFacts(slug="pla", density_g_cm3=1.25, price_per_kg=Decimal("20"))
RATES = Rates(
    setup_fee=Decimal("5"),
    default_hourly_rate=Decimal("10"),
    quantity_breaks=(),  # the plates alone lower the price here
    pipeline_overhead_s=600,
    plate_setup_s=300,
)
MK4 = MachineOffer(name="MK4 #1", hourly_rate=Decimal("6"), queue_eta_s=1200, bed_mm=(250, 210))
EXTENTS = (30.0, 20.0, 10.0)  # 30 x 20 mm on the bed: 9 x 5 = 45 to a plate


def quote(quantity: int, **changes: object):
    args: dict[str, object] = dict(
        volume_mm3=3000,
        height_mm=10,
        quantity=quantity,
        material=PLA,
        machines=[MK4],
        rates=RATES,
        toolpath_time_s=900,
        extents_mm=EXTENTS,
    )
    return quote_line(**{**args, **changes})  # type: ignore[arg-type]


def test_ten_copies_cost_less_per_part_than_one_and_are_the_plans_figures() -> None:
    one, ten = quote(1), quote(10)
    assert ten.total / 10 < one.total
    plan = plate_plan(extents_mm=EXTENTS, quantity=10, part_time_s=900, rates=RATES, machine=MK4)
    assert (plan.plates, plan.copies_per_plate) == (1, 10)
    assert (ten.plates, ten.copies_per_plate, ten.plate_time_s) == (1, 10, 300 + 10 * 900)
    # The lead time is the plan's: the queue, its plate's time, the pipeline; not 1 part's.
    assert ten.lead_time_s == 1200 + plan.run_time_s + 600 == 1200 + 300 + 9000 + 600
    # One setup fee for the plate, its setup time shared by its 10 copies.
    assert ten.setup_fee == Decimal("5.00") and one.setup_fee == Decimal("5.00")
    assert ten.machine_cost == Decimal("1.55")  # (300 / 10 + 900) s at 6 EUR/h
    assert one.machine_cost == Decimal("2.00")  # (300 + 900) s at 6 EUR/h
    assert ten.total == ten.setup_fee + ten.unit_price * 10


def test_copies_beyond_one_plate_take_more_plates_each_with_its_setup() -> None:
    full = copies_per_plate(footprint_mm=(30, 20), bed_mm=(250, 210), rates=RATES)
    # 6 mm apart and 1 mm of slack: (240 + 7) // (30 + 7) = 6 x (200 + 7) // (20 + 7) = 7: 42;
    # turned, 9 x 5 = 45.
    assert full == 45
    many = quote(100)
    assert (many.plates, many.copies_per_plate) == (3, 45)
    assert many.setup_fee == Decimal("15.00")
    assert many.lead_time_s == 1200 + 3 * 300 + 100 * 900 + 600
    # A full plate is the cheapest per part; a part-filled third plate costs a little more.
    assert quote(45).total / 45 < many.total / 100 < quote(10).total / 10


def test_the_bed_and_its_keep_out_zones_set_the_copies_per_plate() -> None:
    small_bed = replace(MK4, bed_mm=(180, 180))
    assert quote(100, machines=[small_bed]).copies_per_plate == 4 * 6  # 170 mm inside
    zoned = replace(MK4, keep_out_mm2=240 * 200 / 4)  # a quarter of the bed inside the margin
    assert quote(100, machines=[zoned]).copies_per_plate == 33  # 45 x 3/4, rounded down
    # Without a bed: the default one (Rates.default_bed_mm), as the MK4's.
    assert quote(100, machines=[replace(MK4, bed_mm=None)]).copies_per_plate == 45


def test_a_part_that_fits_the_bed_only_alone_is_one_copy_to_a_plate() -> None:
    big = quote(3, extents_mm=(200.0, 180.0, 10.0))
    assert (big.plates, big.copies_per_plate) == (3, 1)
    assert big.setup_fee == Decimal("15.00")


def test_the_quote_picks_the_machine_whose_plan_finishes_first() -> None:
    # The small bed is free now, the large one busy for an hour: 100 copies take 5 plates on
    # the small one, 1 on the large one. The free one finishes first, unless a plate's setup
    # is long enough that four more of them outweigh the hour's wait.
    small = MachineOffer(name="mini", hourly_rate=Decimal("6"), queue_eta_s=0, bed_mm=(180, 180))
    large = MachineOffer(name="xl", hourly_rate=Decimal("6"), queue_eta_s=3600, bed_mm=(360, 360))
    chosen = quote(100, machines=[small, large], toolpath_time_s=60)
    assert chosen.machine == "mini"  # 5 x 300 + 6000 = 7500 s against 3600 + 1 x 300 + 6000
    chosen = quote(
        100, machines=[small, large], toolpath_time_s=60, rates=replace(RATES, plate_setup_s=3000)
    )
    assert chosen.machine == "xl" and chosen.plates == 1


def test_a_requote_on_built_geometry_keeps_the_plates_quoted() -> None:
    quoted = quote(100, geometry_basis="estimator")
    again = requote(quoted.as_json(), volume_mm3=3000, height_mm=10, rates=RATES)
    assert (again.plates, again.copies_per_plate, again.setup_fee) == (3, 45, quoted.setup_fee)
    assert again.total == quoted.total and again.lead_time_s == quoted.lead_time_s


def test_without_extents_a_line_is_one_run_as_before() -> None:
    plain = quote(10, extents_mm=None)
    assert plain.plates == 0 and plain.setup_fee == Decimal("5.00")
    assert plain.lead_time_s == 1200 + 10 * 900 + 600


@pytest.mark.parametrize(
    "outline",
    [
        box(0, 0, 30, 20),
        Point(0, 0).buffer(22.5),  # a shaft collar
        Point(0, 0).buffer(7),  # a spacer
        Polygon([(0, 0), (40, 0), (40, 10), (10, 10), (10, 40), (0, 40)]),  # a bracket
        box(0, 0, 100, 60),  # a cover plate
        Point(0, 0).buffer(50),  # a handwheel
    ],
)
def test_the_quote_never_promises_more_copies_to_a_plate_than_the_arrangement_places(
    outline: Polygon,
) -> None:
    minx, miny, maxx, maxy = outline.bounds
    estimate = copies_per_plate(
        footprint_mm=(maxx - minx, maxy - miny), bed_mm=(250, 210), rates=RATES
    )
    copies = [CopyToPlace(job=1, copy=n, footprint=outline) for n in range(1, estimate + 1)]
    # The bed the pipeline arranges on: an MK4's, its purge line kept clear.
    arrangement = arrange(copies, bed_for(make_profile()), spacing_mm=6.0)
    assert len(arrangement.plates) == 1 and not arrangement.unplaced


# --- at order time ---------------------------------------------------------------------------

LINE = {
    "part": "block",
    "parameters": {"width": 20, "height": 10, "hole_d": 5},
    "material": "pla",
    "quantity": 300,
}


@pytest.mark.django_db
def test_a_quantity_needing_more_plates_than_a_plan_holds_is_refused_with_the_number(
    api, settings, no_broker
) -> None:
    make_part("block")
    make_machine()
    settings.PLATES_MAX_PER_PLAN = 2
    response = api.post("/api/v1/orders/", {"lines": [LINE]}, format="json")
    assert response.status_code == 400, response.content
    (message,) = response.json()["errors"]["lines"]["0"]["quantity"]
    found = re.fullmatch(
        r"300 parts need (\d+) build plates; one order line may take at most 2 "
        r"\(at most (\d+) of this part\): split the quantity over several lines",
        message,
    )
    assert found is not None, message
    needed, most = int(found.group(1)), int(found.group(2))
    assert needed > 2 and most < 300
    assert not Order.objects.exists()
    # As many as two plates hold go through.
    response = api.post("/api/v1/orders/", {"lines": [{**LINE, "quantity": most}]}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["lines"][0]["quote"]["plates"] == 2


@pytest.mark.django_db
def test_the_cart_says_why_a_quantity_is_refused(user, settings, no_broker) -> None:
    make_part("block")
    make_machine()
    settings.PLATES_MAX_PER_PLAN = 1
    browser = Client()
    browser.force_login(user)
    form = {"p_width": "20", "p_height": "10", "p_hole_d": "5", "material": "pla"}
    browser.post("/parts/block/add/", {**form, "quantity": "300"})
    cart = browser.get("/cart/").content.decode()
    key = re.search(r'name="idempotency_key" value="(\w+)"', cart)
    assert key is not None
    response = browser.post(
        "/cart/",
        {
            "idempotency_key": key.group(1),
            "reference": "",
            "due_date": "",
            "priority": "normal",
            "delivery_site": "",
            "note": "",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200 and not Order.objects.exists()
    assert re.search(r"300 parts need \d+ build plates; one order line may take at most 1", html)
