"""Quote accuracy on real CAD: a seed part's price estimated before its geometry exists is
within the tolerance of its price once built (benchmarks/quote_accuracy.py has the figures
for the whole library), and the sandbox's batch measurement is a build's own measurement."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from catalog.estimator import random_configurations, sample_configurations, variables_for
from catalog.estimator_fit import Sample, fit_estimator
from catalog.geometry import BuildLimits, Geometry, Measurement, build_geometry, measure_geometry
from catalog.models import RevisionEstimator
from catalog.parameters import parse_rules, parse_schema
from catalog.parts import DEMO_PARTS
from catalog.services import revision_estimator_fit
from microfactory.errors import Rejected
from orders.quoting import MaterialFacts, Rates, quote_line

pytestmark = pytest.mark.cad

LIMITS = BuildLimits(require_bwrap=False, timeout_s=600, cpu_s=600)
TOLERANCE = 0.05  # MF_QUOTE_TOLERANCE's default
PLA = MaterialFacts("pla", 1.24, Decimal("25.00"))
# Seed parts whose samples measure in seconds (the slow ones, gears and knobs, are in the
# benchmark): their estimated prices must fall within the tolerance.
QUICK_PARTS = ["shaft_collar", "spacer", "hose_barb", "belt_guard_bracket"]


def part(slug: str) -> Any:
    return next(p for p in DEMO_PARTS if p.slug == slug)


def unit_price(
    volume: float, height: float, extents: tuple[float, float, float] | None = None
) -> Decimal:
    """With extents, on a build plate as an order line is quoted (its setup time shared)."""
    return quote_line(
        volume_mm3=volume,
        height_mm=height,
        quantity=1,
        material=PLA,
        machines=[],
        rates=Rates(),
        extents_mm=extents,
    ).unit_price


def build_all(script: str, configurations: list[dict[str, Any]]) -> list[Geometry]:
    with ThreadPoolExecutor(2) as pool:  # each build is its own process; CI has two cores
        return list(pool.map(lambda v: build_geometry(script, v, limits=LIMITS), configurations))


def test_measuring_a_batch_gives_what_each_build_measures() -> None:
    collar = part("shaft_collar")
    configurations = random_configurations(
        parse_schema(collar.schema), parse_rules(collar.rules), count=3, seed="measure"
    )
    refused = {**configurations[0], "width": 0.0}  # no solid: the script fails

    measured = measure_geometry(collar.script, [*configurations, refused], limits=LIMITS)
    built = build_all(collar.script, configurations)

    for one, whole in zip(measured, built, strict=False):
        assert isinstance(one, Measurement)
        assert one.volume_mm3 == pytest.approx(whole.volume_mm3, rel=1e-9)
        assert one.bbox_mm == pytest.approx(whole.bbox_mm, abs=1e-6)
    assert isinstance(measured[-1], Rejected)  # one refusal never fails the batch


@pytest.mark.parametrize("slug", QUICK_PARTS)
def test_estimated_prices_of_seed_parts_are_within_the_tolerance_of_the_built(slug: str) -> None:
    seed = part(slug)
    specs, rules = parse_schema(seed.schema), parse_rules(seed.rules)
    training = sample_configurations(specs, rules, seed=slug)
    samples = [
        Sample(values, m.volume_mm3, m.bbox_mm)
        for values, m in zip(
            training, measure_geometry(seed.script, training, limits=LIMITS), strict=True
        )
        if isinstance(m, Measurement)
    ]
    estimator = fit_estimator(variables_for(specs), samples)
    configurations = [
        values
        for values in random_configurations(specs, rules, count=6, seed=f"{slug}-test")
        if values not in training
    ][:3]

    for values, built in zip(configurations, build_all(seed.script, configurations), strict=True):
        guess = estimator.estimate(values)
        estimated = unit_price(guess.volume_mm3, guess.extents_mm[2])
        real = unit_price(built.volume_mm3, built.bbox_mm[2])
        assert abs(estimated - real) / real <= TOLERANCE, (slug, values, estimated, real)


@pytest.mark.django_db
def test_publishing_fits_an_estimator_that_quotes_the_block_as_built(user) -> None:
    from orders.models import OrderLine
    from tests.builders import BLOCK_SCRIPT, make_machine, make_order, make_part

    revision = make_part("block")
    make_machine()
    fit = RevisionEstimator.objects.get(revision=revision)
    assert fit.status == RevisionEstimator.Status.QUEUED  # publishing queued it

    status = revision_estimator_fit(revision_id=revision.pk, limits=LIMITS)

    fit.refresh_from_db()
    assert status == fit.status == RevisionEstimator.Status.READY, fit.message
    assert fit.samples >= 40 and fit.worst_error < TOLERANCE and fit.finished_at <= timezone.now()
    configuration = {"width": 37.5, "height": 21.2, "hole_d": 11.3}
    line = make_order(user=user, parameters=configuration).lines.get()
    assert line.quote["geometry_basis"] == "estimator"
    assert line.price_check == OrderLine.PriceCheck.PENDING
    (built,) = build_all(BLOCK_SCRIPT, [configuration])
    assert line.quote["volume_mm3"] == pytest.approx(built.volume_mm3, rel=TOLERANCE)
    x, y, z = (float(size) for size in built.bbox_mm)
    real = unit_price(built.volume_mm3, z, (x, y, z))
    assert abs(Decimal(line.quote["unit_price"]) - real) / real <= TOLERANCE


@pytest.mark.django_db
def test_a_fit_queued_again_meanwhile_keeps_nothing_of_its_own(monkeypatch) -> None:
    import catalog.services as services
    from tests.builders import make_part

    revision = make_part("block")
    measure = services.geometry.measure_geometry

    def queued_again_while_measuring(*args: Any, **kwargs: Any) -> Any:
        # `manage.py fit_estimators --all` queues a new fit while this one measures.
        services.revision_estimator_queue(revision=revision, now=timezone.now(), send=False)
        return measure(*args, **kwargs)

    monkeypatch.setattr(services.geometry, "measure_geometry", queued_again_while_measuring)
    revision_estimator_fit(revision_id=revision.pk, limits=LIMITS)

    fit = RevisionEstimator.objects.get(revision=revision)
    assert fit.status == RevisionEstimator.Status.QUEUED and fit.fitted is None
