"""Finished days of the dashboard's machine time, kept in Django's cache.

Why: the OEE figure read every machine state change of the period and cut it into days and
opening hours on each request (over half of its time at 100,000 jobs), though a day that has
ended changes only when its history is rewritten. Now each machine's planned time and time per
state of a finished day is kept, keyed by machine, day, time zone, the site's calendar and a
dashboard generation; only the days from the first one not kept to now are computed.

The generation is a number in the cache that production.lifecycle moves on when a write can
change a day that has ended (dashboard_changed): a machine's first state change (before it,
its whole past is read as its current state), a state change or history dated before today,
history recorded in bulk. Events written now change only today, which is never kept. With a
shared cache (MF_CACHE_URL) every process sees a change at once; with the per-process default
another process's change is seen when the entries expire (MF_DASHBOARD_CACHE_S).

This module imports only Django, so production.lifecycle can call it.
"""

from typing import Any

from django.conf import settings
from django.core.cache import cache

GENERATION_KEY = "dashboard:generation"


def dashboard_generation() -> int:
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        generation = 1
        cache.add(GENERATION_KEY, generation, timeout=None)
    return int(generation)


def dashboard_changed() -> None:
    """Every kept day is stale (a day that has ended was written to)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # no generation yet (or evicted): any new number differs from none
        cache.set(GENERATION_KEY, dashboard_generation() + 1, timeout=None)


def kept_get(keys: list[str]) -> dict[str, Any]:
    return cache.get_many(keys)


def kept_set(values: dict[str, Any]) -> None:
    cache.set_many(values, timeout=settings.MF_DASHBOARD_CACHE_S)
