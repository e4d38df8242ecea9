"""The Redis cache fails open (microfactory.cache): with Redis up it caches, with Redis gone a
read is a miss and a write is lost, never an exception (a 500 in a request)."""

import pytest

from microfactory.cache import FailOpenRedisCache
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


def test_a_live_redis_caches(redis_url: str) -> None:
    cache = FailOpenRedisCache(redis_url.rsplit("/", 1)[0] + "/3", {})
    cache.set("answer", 42, timeout=30)
    assert cache.get("answer") == 42
    assert cache.incr("answer") == 43
    assert cache.get_many(["answer", "none"]) == {"answer": 43}


def test_an_unreachable_redis_is_a_miss_and_a_lost_write() -> None:
    cache = FailOpenRedisCache(f"redis://127.0.0.1:{free_port()}/1", {})  # nothing listens
    assert cache.get("answer") is None
    assert cache.get("answer", default="computed") == "computed"
    assert cache.set("answer", 42, timeout=30) is None
    assert cache.add("answer", 42) is False
    assert cache.get_many(["a", "b"]) == {}
    assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]  # the keys not stored
    assert cache.incr("generation") == 1
    assert cache.delete("answer") is False
