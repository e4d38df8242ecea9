"""The "from" price on a catalog card: what one part of the default configuration costs in
the cheapest of its materials on the cheapest machine that can make it, priced by the part
page's own calculation (orders.quoting), so the page never quotes less.

Cheap by design: no geometry is built or read for it. The volume and size come from what a
quote uses before any preview exists (the revision's fitted estimator, else the envelope
guess from its lengths), the machines are read once for all the cards (production.public.
machines_for_quotes), and each price is cached per revision, estimator, material prices and
rates (settings ORDER_PRICE_FROM_CACHE_S), so a warm catalog list costs one query and one
cache read for all its cards.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache

from catalog.estimator import EstimatorError, GeometryEstimator
from catalog.models import Material, PartRevision, RevisionEstimator
from catalog.parameters import ParameterValue, SchemaError, defaults, parse_schema
from orders.quoting import (
    MachineOffer,
    MaterialFacts,
    QuoteError,
    envelope_volume_mm3,
    quote_line,
)
from production import public


@dataclass(frozen=True)
class PriceFrom:
    total: Decimal  # one part, setup fee included
    currency: str
    material: str  # the material's name
    estimated: bool  # always, today: priced before the part was built


@dataclass(frozen=True)
class _Guess:
    volume_mm3: float
    extents_mm: tuple[float, float, float]
    basis: str  # "estimator" or "envelope" (orders.quoting.Quote.geometry_basis)


def price_from_many(revisions: Sequence[PartRevision]) -> dict[int, PriceFrom]:
    """Each revision's "from" price by revision id (missing: none can be given). Reads the
    revisions' prefetched materials; warm: one query (the estimators) and one cache read."""
    estimators = {
        revision_id: (status, fitted, finished_at)
        for revision_id, status, fitted, finished_at in RevisionEstimator.objects.filter(
            revision__in=revisions
        ).values_list("revision_id", "status", "fitted", "finished_at")
    }
    keys = {_key(r, estimators.get(r.pk)): r for r in revisions}
    cached = cache.get_many(list(keys))
    missing = [(key, revision) for key, revision in keys.items() if key not in cached]
    fresh = _price_many([r for _, r in missing], estimators)
    if missing:
        cache.set_many(
            {key: fresh.get(revision.pk) for key, revision in missing},
            timeout=settings.ORDER_PRICE_FROM_CACHE_S,
        )
    prices = {revision.pk: cached[key] for key, revision in keys.items() if key in cached}
    prices.update(fresh)
    return {pk: price for pk, price in prices.items() if price is not None}


def _key(revision: PartRevision, estimator: tuple[str, Any, Any] | None) -> str:
    """What the price depends on besides the machines' queues and rates: the revision, its
    fitted estimator, its materials' prices and the quote's rates."""
    materials = sorted(
        (m.slug, str(m.price_per_kg), str(m.density_g_cm3))
        for m in revision.materials.all()
        if m.active
    )
    fitted = (estimator[0], str(estimator[2])) if estimator else None
    payload = json.dumps(
        [revision.checksum, fitted, materials, repr(settings.ORDER_QUOTE_RATES)], sort_keys=True
    )
    return f"price-from:{revision.pk}:{hashlib.sha256(payload.encode()).hexdigest()[:32]}"


def _price_many(
    revisions: Sequence[PartRevision], estimators: dict[int, tuple[str, Any, Any]]
) -> dict[int, PriceFrom]:
    """Quote every revision's default configuration in each of its materials; the machines
    are read once per process."""
    wanted: list[tuple[PartRevision, Material, _Guess]] = []
    for revision in revisions:
        guess = _guess(revision, estimators.get(revision.pk))
        if guess is not None:
            wanted.extend((revision, m, guess) for m in revision.materials.all() if m.active)
    best: dict[int, PriceFrom] = {}
    for process in sorted({revision.process for revision, _, _ in wanted}):
        group = [item for item in wanted if item[0].process == process]
        offers = public.machines_for_quotes(
            process=process, parts=[(m.slug, guess.extents_mm) for _, m, guess in group]
        )
        default_rate = settings.ORDER_QUOTE_RATES.default_hourly_rate
        for (revision, material, guess), machines in zip(group, offers, strict=True):
            # "From": the cheapest capable machine's rate, whatever the queues (they set the
            # lead time and which machine the part page quotes on); none: the default rate.
            rate = min(
                (m.hourly_rate if m.hourly_rate > 0 else default_rate for m in machines),
                default=default_rate,
            )
            try:
                quote = quote_line(
                    volume_mm3=guess.volume_mm3,
                    height_mm=guess.extents_mm[2],
                    quantity=1,
                    material=MaterialFacts(
                        slug=material.slug,
                        density_g_cm3=float(material.density_g_cm3),
                        price_per_kg=material.price_per_kg,
                    ),
                    machines=[MachineOffer(name="", hourly_rate=rate, queue_eta_s=0)],
                    rates=settings.ORDER_QUOTE_RATES,
                    geometry_basis=guess.basis,
                    extents_mm=guess.extents_mm,  # one plate, as the part page quotes one
                )
            except QuoteError:
                continue
            known = best.get(revision.pk)
            if known is None or quote.total < known.total:
                best[revision.pk] = PriceFrom(
                    quote.total, quote.currency, material.name, not quote.firm
                )
    return best


def _guess(revision: PartRevision, estimator: tuple[str, Any, Any] | None) -> _Guess | None:
    """The default configuration's volume and size as a quote guesses them before the
    geometry exists (orders.quotes.line_facts does the same for any configuration)."""
    try:
        specs = parse_schema(revision.parameter_schema)
    except SchemaError:
        return None
    parameters: dict[str, ParameterValue] = defaults(specs)
    if estimator is not None and estimator[0] == RevisionEstimator.Status.READY and estimator[1]:
        try:
            estimate = GeometryEstimator.from_json(estimator[1]).estimate(parameters)
        except EstimatorError:
            pass
        else:
            return _Guess(estimate.volume_mm3, estimate.extents_mm, "estimator")
    lengths = [float(parameters[s.name]) for s in specs if s.type == "length"]
    if not lengths:
        return None  # a static model without an estimator: no guess worth showing
    volume, height = envelope_volume_mm3(lengths)
    sizes = sorted(lengths, reverse=True)[:3]
    while len(sizes) < 3:
        sizes.append(sizes[-1])
    return _Guess(volume, (sizes[0], sizes[1], height), "envelope")
