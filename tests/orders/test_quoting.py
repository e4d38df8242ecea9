"""orders.quoting is pure: no database, no settings."""

from decimal import Decimal

import pytest

from orders.quoting import (
    MachineOffer,
    MaterialFacts,
    QuoteError,
    Rates,
    envelope_volume_mm3,
    estimate_time_s,
    quantity_discount,
    quote_line,
)

PLA = MaterialFacts(slug="pla", density_g_cm3=1.25, price_per_kg=Decimal("20"))
RATES = Rates(
    setup_fee=Decimal("5"),
    waste_factor=0.2,
    default_hourly_rate=Decimal("10"),
    deposition_mm3_s=10.0,
    layer_height_mm=0.2,
    layer_overhead_s=2.0,
    quantity_breaks=((10, 0.1), (100, 0.2)),
    pipeline_overhead_s=600,
)
IDLE = MachineOffer(name="MK4 #1", hourly_rate=Decimal("6"), queue_eta_s=0)


def quote(**changes):
    args = dict(
        volume_mm3=10_000, height_mm=10, quantity=1, material=PLA, machines=[IDLE], rates=RATES
    )
    return quote_line(**{**args, **changes})


def test_material_cost_is_volume_times_density_times_price_with_waste():
    q = quote()
    # 10 cm³ x 1.25 g/cm³ x 1.2 = 15 g; 15 g x 20 €/kg = 0.30 €
    assert q.mass_g == 15.0
    assert q.material_cost == Decimal("0.30")


def test_machine_time_is_estimated_from_volume_and_height_before_a_toolpath():
    # 10 000 mm³ / 10 mm³/s = 1000 s, plus 50 layers x 2 s = 100 s
    assert estimate_time_s(volume_mm3=10_000, height_mm=10, rates=RATES) == 1100
    q = quote()
    assert (q.time_basis, q.machine_time_s) == ("estimate", 1100)
    assert q.machine_cost == Decimal("1.83")  # 1100 s at 6 €/h


def test_the_toolpath_time_wins_over_the_estimate_when_known():
    q = quote(toolpath_time_s=1800)
    assert (q.time_basis, q.machine_time_s, q.machine_cost) == ("toolpath", 1800, Decimal("3.00"))


def test_unit_price_setup_fee_and_total():
    q = quote(quantity=3)
    assert q.unit_price == Decimal("2.13")  # 0.30 + 1.83
    assert q.total == Decimal("11.39")  # 5 + 3 x 2.13


def test_quantity_breaks_lower_the_unit_price():
    assert quantity_discount(9, RATES.quantity_breaks) == 0
    assert quantity_discount(10, RATES.quantity_breaks) == 0.1
    assert quantity_discount(500, RATES.quantity_breaks) == 0.2
    assert quote(quantity=10).unit_price < quote(quantity=9).unit_price


def test_lead_time_takes_the_machine_that_finishes_first_including_its_queue():
    busy_cheap = MachineOffer(name="A", hourly_rate=Decimal("4"), queue_eta_s=7200)
    idle = MachineOffer(name="B", hourly_rate=Decimal("9"), queue_eta_s=0)
    q = quote(machines=[busy_cheap, idle], quantity=2)
    assert q.machine == "B"
    assert q.lead_time_s == 0 + 2 * 1100 + 600
    assert q.machine_cost == Decimal("2.75")  # at B's rate, 9 €/h


def test_without_a_capable_machine_there_is_no_lead_time_and_the_default_rate():
    q = quote(machines=[])
    assert q.lead_time_s is None and q.machine == ""
    assert q.machine_cost == Decimal("3.06")  # 1100 s at 10 €/h


def test_a_machine_without_a_rate_is_priced_at_the_default_rate():
    q = quote(machines=[MachineOffer(name="X", hourly_rate=Decimal(0), queue_eta_s=0)])
    assert q.machine_cost == Decimal("3.06")


@pytest.mark.parametrize("changes", [{"volume_mm3": 0}, {"quantity": 0}, {"quantity": -3}])
def test_nonsense_is_refused(changes):
    with pytest.raises(QuoteError):
        quote(**changes)


def test_the_quote_is_json_safe_and_stable():
    import json

    stored = quote().as_json()
    assert json.loads(json.dumps(stored)) == stored
    assert stored["total"] == "7.13" and stored["currency"] == "EUR"


def test_envelope_volume_from_length_parameters():
    volume, height = envelope_volume_mm3([40, 20, 10, 5], fill=0.5)
    assert (volume, height) == (40 * 20 * 10 * 0.5, 10)
    assert envelope_volume_mm3([30], fill=1.0) == (27_000, 30)
    with pytest.raises(QuoteError):
        envelope_volume_mm3([])
