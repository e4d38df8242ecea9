"""The promise means "QC passed" (a QC allowance after each job's finish), and a printed
line's copies are simulated as the quote's plate plan runs them (orders.quoting): pure, no
database."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from orders.quoting import MachineOffer, MaterialFacts, Rates, plate_plan, quote_line
from production.simulation.engine import SimMachine
from production.simulation.promise import (
    PromiseLine,
    Spread,
    promise_from,
    qc_allowance_s,
)
from production.simulation.snapshot import LiveFactory
from tests.production.simulation.test_engine import (
    HOUR,
    MONDAY_2PM,
    at,
    fixed_queue,
    printer,
)

EXACT = Spread(expected=1.0, late=1.0, confidence=0.9, samples=50)


def _promise(factory: LiveFactory, line: PromiseLine, *, qc: tuple[float, float]):
    return promise_from(
        factory,
        [line],
        now=MONDAY_2PM,
        expedite=False,
        delivery_site=None,
        overhead_s=900,
        changeover=900,
        spread=EXACT,
        qc=qc,
    )


def test_the_promise_allows_qc_per_job_and_per_copy_after_the_simulated_finish():
    line = PromiseLine(process="fdm", material="pla", extents_mm=(40, 30, 20), run_s=HOUR, copies=3)
    without = _promise(fixed_queue(), line, qc=(0.0, 0.0))
    assert without is not None and without.ready_at == at(1, 9)  # as test_engine finds it
    with_qc = _promise(fixed_queue(), line, qc=(1800.0, 120.0))
    assert with_qc is not None
    # Finished Tuesday 09:00; 30 min for the job and 2 min for each of its 3 copies.
    assert with_qc.ready_at == at(1, 9) + timedelta(seconds=1800 + 3 * 120)
    assert with_qc.expected_at == with_qc.ready_at


def test_the_qc_allowance_comes_from_its_settings(settings):
    settings.ORDER_QUOTE_RATES = replace(settings.ORDER_QUOTE_RATES, qc_job_s=600, qc_copy_s=45)
    assert qc_allowance_s(copies=4) == 600 + 4 * 45
    assert qc_allowance_s(copies=0) == 600 + 45  # a job has at least one copy


def test_a_ten_copy_job_is_simulated_as_the_quotes_plate_plan():
    rates = Rates(qc_job_s=1800.0, qc_copy_s=120.0)  # the settings' defaults
    machine = MachineOffer(name="MK4-1", hourly_rate=Decimal("6"), queue_eta_s=0.0)
    # 110 x 100 mm lying flat: two to the 250 x 210 bed, so ten copies take five plates.
    extents = (110.0, 100.0, 10.0)
    quote = quote_line(
        volume_mm3=40_000,
        height_mm=10,
        quantity=10,
        material=MaterialFacts(slug="pla", density_g_cm3=1.24, price_per_kg=Decimal("20")),
        machines=[machine],
        rates=rates,
        toolpath_time_s=1200.0,
        extents_mm=extents,
    )
    plan = plate_plan(
        extents_mm=extents, quantity=10, part_time_s=1200.0, rates=rates, machine=machine
    )
    assert (quote.plates, quote.copies_per_plate) == (plan.plates, plan.copies_per_plate) == (5, 2)
    assert plan.run_time_s == 5 * rates.plate_setup_s + 10 * 1200.0
    assert quote.run_time_s == pytest.approx(plan.run_time_s)
    # The quote's lead time counts the same machine time (an idle machine, no transit), and
    # QC: 30 min for the job, 2 min for each of its 10 copies.
    qc = rates.qc_job_s + 10 * rates.qc_copy_s
    assert quote.lead_time_s == round(plan.run_time_s + rates.pipeline_overhead_s + qc)
    line = PromiseLine(
        process="fdm", material="pla", extents_mm=extents, run_s=quote.run_time_s, copies=10
    )
    idle = LiveFactory(machines=(SimMachine(facts=printer()),), waiting=(), transit={})
    promise = _promise(idle, line, qc=(0.0, 0.0))
    assert promise is not None
    simulated = (promise.ready_at - MONDAY_2PM).total_seconds() - 900  # less the pipeline
    assert simulated == pytest.approx(plan.run_time_s)
    # With the QC allowance, the promise on an idle machine is the quote's lead time.
    with_qc = _promise(idle, line, qc=(rates.qc_job_s, rates.qc_copy_s))
    assert with_qc is not None
    assert (with_qc.ready_at - MONDAY_2PM).total_seconds() == pytest.approx(quote.lead_time_s)
