"""Catalog reads kept in Django's cache, keyed by a catalog generation.

Why: every request of the part list read every family, all its published revisions (scripts
included) and their materials, and serialised them again, for an answer that changes only when
a catalog admin changes something: the catalog list API served 0.03 of what the server's
constant-response endpoint serves (benchmarks/web.py). Now an answer is built once per
generation and per query string.

The generation is a number in the cache that every save or delete of a part family, revision
or material, a revision's materials changing and a search synonym's change move on (signals,
connected in catalog.apps). A cache entry is keyed by it, so a change is a new entry at once in
every process that shares the cache (MF_CACHE_URL). With the per-process default cache,
another process's change is seen when its entry expires: MF_CATALOG_CACHE_S bounds how stale.
Writes that bypass the model (QuerySet.update) call catalog_changed() themselves.
"""

import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache

GENERATION_KEY = "catalog:generation"

T = TypeVar("T")


def catalog_generation() -> int:
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        generation = 1
        cache.add(GENERATION_KEY, generation, timeout=None)
    return int(generation)


def catalog_changed(**_signal: Any) -> None:
    """Every cached catalog read made before is stale (a signal receiver, or called directly)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # no generation yet (or evicted): any new number differs from none
        cache.set(GENERATION_KEY, catalog_generation() + 1, timeout=None)


def catalog_cached(name: str, build: Callable[[], T]) -> T:
    """`build()`'s value, kept for this catalog generation under `name` (which must name all
    else it depends on: path, query string)."""
    # Hashed: a search's words are the user's, of any length (memcached allows 250 chars).
    digest = hashlib.sha256(name.encode()).hexdigest()[:40]
    key = f"catalog:{catalog_generation()}:{digest}"
    value = cache.get(key)
    if value is None:
        value = build()
        cache.set(key, value, timeout=settings.MF_CATALOG_CACHE_S)
    return value  # type: ignore[no-any-return]
