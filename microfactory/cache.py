"""Django's Redis cache, failing open: while Redis is down a read is a miss and a write is lost.

Everything we keep in the cache can be computed again (catalog answers, failure regions, "from"
prices, throttle counters): an unreachable cache must cost time, not a 500. The broker's Redis
going away is a fault the system rides out (tests/integration/test_faults.py), and production
points the cache at the same Redis (MF_CACHE_URL).
"""

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import redis
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
UNREACHABLE = (redis.RedisError, OSError)


def _fail_open(default: Callable[..., Any]) -> Callable[[F], F]:
    def wrap(method: F) -> F:
        @wraps(method)
        def call(self: RedisCache, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except UNREACHABLE as error:
                logger.warning("cache %s skipped: unreachable (%s)", method.__name__, error)
                return default(*args, **kwargs)

        return call  # type: ignore[return-value]

    return wrap


def _given_default(key: str, default: Any = None, *args: Any, **kwargs: Any) -> Any:
    return default


class FailOpenRedisCache(RedisCache):
    get = _fail_open(_given_default)(RedisCache.get)
    get_many = _fail_open(lambda *a, **k: {})(RedisCache.get_many)
    has_key = _fail_open(lambda *a, **k: False)(RedisCache.has_key)
    set = _fail_open(lambda *a, **k: None)(RedisCache.set)
    add = _fail_open(lambda *a, **k: False)(RedisCache.add)
    set_many = _fail_open(lambda data, *a, **k: list(data))(RedisCache.set_many)
    touch = _fail_open(lambda *a, **k: False)(RedisCache.touch)
    delete = _fail_open(lambda *a, **k: False)(RedisCache.delete)
    delete_many = _fail_open(lambda *a, **k: None)(RedisCache.delete_many)
    # A counter that cannot be moved on: its readers compute afresh (catalog.cache keys by it,
    # and a restarted Redis has no old generation's entries left to serve).
    incr = _fail_open(lambda key, delta=1, *a, **k: delta)(RedisCache.incr)
