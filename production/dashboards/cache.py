"""Finished days of the dashboard, kept in Django's cache.

Why: the OEE figure read every machine state change of the period and cut it into days and
opening hours on each request, and the stage figure grouped every job event of the period
(over half of the page's time at 100,000 jobs each), though a day that has ended changes only
when its history is rewritten. Now each machine's planned time and time per state of a
finished day is kept (keyed by site, day, time zone, the site's calendar and a generation),
and so are each finished day's job moves (keyed by the dashboard's sites, day, time zone and
the generations); only today and the days not kept are computed.

Two kinds of generation, numbers in the cache, make kept days stale when their rows change:
- the dashboard's (all kept days): production.lifecycle moves it on when a write can change a
  day that has ended (dashboard_changed): a machine's first state change (before it, its whole
  past is read as its current state), a state change or history dated before today, a job
  moved with a time more than a minute before the clock (a replay), history recorded in bulk;
- a site's (its kept stage days): a job's events count at the site of the job's CURRENT
  machine, so when a job with an event on a day that may have ended changes site (re-routed,
  moved on the floor, taken off a machine, cancelled, its machine moved to another site),
  production.lifecycle.jobs_changed_site moves on the generations of the sites it left and
  joined (sites_changed). The machine time (OEE) does not depend on it.
Events written now change only today, which is never kept. With a shared cache (MF_CACHE_URL)
every process sees a change at once; with the per-process default another process's change is
seen when the entries expire (MF_DASHBOARD_CACHE_S).

A generation starts at the clock's nanoseconds, not 1: one evicted and started again never
takes a number that older entries still carry.

This module imports only Django, so production.lifecycle can call it.
"""

import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.cache import cache

GENERATION_KEY = "dashboard:generation"


def _site_key(site_id: int) -> str:
    return f"dashboard:generation:site:{site_id}"


def dashboard_generation() -> int:
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        started = time.time_ns()
        cache.add(GENERATION_KEY, started, timeout=None)
        generation = cache.get(GENERATION_KEY, started)  # another process's, if it came first
    return int(generation)


def site_generations(site_ids: Iterable[int]) -> dict[int, int]:
    """The generation of each site's kept stage days (one cache read)."""
    keys = {_site_key(site_id): site_id for site_id in site_ids}
    found = cache.get_many(list(keys))
    missing = [key for key in keys if key not in found]
    started = time.time_ns()
    if missing:
        for key in missing:
            cache.add(key, started, timeout=None)
        found.update(cache.get_many(missing))
    return {site_id: int(found.get(key, started)) for key, site_id in keys.items()}


def _bump(key: str) -> None:
    try:
        cache.incr(key)
    except ValueError:  # no generation yet (or evicted): any new number differs from none
        cache.set(key, time.time_ns(), timeout=None)


def dashboard_changed() -> None:
    """Every kept day is stale (a day that has ended was written to)."""
    _bump(GENERATION_KEY)


def sites_changed(site_ids: Iterable[int]) -> None:
    """The kept stage days of these sites are stale (their jobs' past moved site)."""
    for site_id in set(site_ids):
        _bump(_site_key(site_id))


def kept_get(keys: list[str]) -> dict[str, Any]:
    return cache.get_many(keys)


def kept_set(values: dict[str, Any]) -> None:
    cache.set_many(values, timeout=settings.MF_DASHBOARD_CACHE_S)
