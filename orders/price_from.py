"""The "from" price on a catalog card: what one part of the default configuration costs in
the cheapest of its materials, as the part page would quote it (orders.quotes).

Cheap by design: no geometry is built for it. The volume comes from what the quote already
uses before a preview exists (the revision's fitted estimator, or the envelope guess), and
the result is cached per revision, estimator and material prices (settings
ORDER_PRICE_FROM_CACHE_S), so the catalog list costs one query and one cache read for all
its cards once warm.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache

from catalog.models import PartRevision, RevisionEstimator
from catalog.parameters import SchemaError, defaults, parse_schema
from orders.quotes import line_facts, line_quote
from orders.quoting import QuoteError


@dataclass(frozen=True)
class PriceFrom:
    total: Decimal  # one part, setup fee included
    currency: str
    material: str  # the material's name
    estimated: bool  # priced before the part was built


def price_from_many(revisions: Sequence[PartRevision], *, now: datetime) -> dict[int, PriceFrom]:
    """Each revision's "from" price by revision id (missing: none can be given). Reads the
    revisions' prefetched materials; one query for the estimators, one cache read."""
    estimators = {
        revision_id: (status, finished_at.isoformat() if finished_at else "")
        for revision_id, status, finished_at in RevisionEstimator.objects.filter(
            revision__in=revisions
        ).values_list("revision_id", "status", "finished_at")
    }
    keys = {_key(r, estimators.get(r.pk)): r for r in revisions}
    cached = cache.get_many(list(keys))
    prices: dict[int, PriceFrom] = {}
    fresh: dict[str, PriceFrom | None] = {}
    for key, revision in keys.items():
        if key in cached:
            price = cached[key]
        else:
            price = fresh[key] = _price_from(revision, now=now)
        if price is not None:
            prices[revision.pk] = price
    if fresh:
        cache.set_many(fresh, timeout=settings.ORDER_PRICE_FROM_CACHE_S)
    return prices


def _key(revision: PartRevision, estimator: tuple[str, str] | None) -> str:
    """What the price depends on besides the machines' queues: the revision, its fitted
    estimator, its materials' prices and the quote's rates."""
    materials = sorted(
        (m.slug, str(m.price_per_kg), str(m.density_g_cm3))
        for m in revision.materials.all()
        if m.active
    )
    payload = json.dumps(
        [revision.checksum, estimator, materials, repr(settings.ORDER_QUOTE_RATES)],
        sort_keys=True,
    )
    return f"price-from:{revision.pk}:{hashlib.sha256(payload.encode()).hexdigest()[:32]}"


def _price_from(revision: PartRevision, *, now: datetime) -> PriceFrom | None:
    try:
        parameters = defaults(parse_schema(revision.parameter_schema))
    except SchemaError:
        return None
    best: PriceFrom | None = None
    for material in (m for m in revision.materials.all() if m.active):
        try:
            quote = line_quote(
                line_facts(
                    revision=revision,
                    parameters=parameters,
                    material=material,
                    quantity=1,
                    now=now,
                )
            )
        except QuoteError:
            continue
        if best is None or quote.total < best.total:
            best = PriceFrom(quote.total, quote.currency, material.name, not quote.firm)
    return best
