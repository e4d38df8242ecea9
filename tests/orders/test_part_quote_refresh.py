"""The part page's kept quote past its period: shown once more while a thread computes the
next one (orders.views._quoted), so no visitor waits for the queue simulation."""

import dataclasses
import time
from decimal import Decimal
from unittest.mock import patch

import pytest
from django.core.cache import cache

from orders import views
from orders.services import LineRequest, line_check
from tests.builders import make_part

# The refresh runs in its own thread and connection: it must see the test's rows committed.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_estimator_fit():
    """Committed, the published part queues its estimator's fit: not this test's business."""
    with patch("catalog.tasks.fit_estimator.apply_async"):
        yield


def _checked() -> dict:
    make_part("block")
    return line_check(
        LineRequest(
            part="block",
            parameters={"width": 20, "height": 10, "hole_d": 5},
            material="pla",
            quantity=1,
        )
    )


def _wait_for_requote(key: str) -> None:
    thread = views._requoting.get(key)
    if thread is not None:
        thread.join(timeout=30)
        assert not thread.is_alive()


def test_a_stale_quote_is_shown_while_a_thread_computes_the_next(settings):
    settings.MF_PART_QUOTE_CACHE_S = 10
    checked = _checked()
    key = views._quote_key(checked, None, "")
    facts, quote, promise = views._quoted(checked, None, "")
    answer, fresh_until = cache.get(key)
    assert answer[1] == quote and fresh_until > time.time()

    # A kept answer past its period, with a price no computation gives.
    stale = dataclasses.replace(quote, total=Decimal("9999.99"))
    cache.set(key, ((facts, stale, promise), time.time() - 1), timeout=60)
    assert views._quoted(checked, None, "")[1].total == Decimal("9999.99")  # no wait
    _wait_for_requote(key)

    again = views._quoted(checked, None, "")[1]
    assert again.total == quote.total != Decimal("9999.99")
    assert cache.get(key)[1] > time.time()  # fresh for another period


def test_a_refresh_that_fails_keeps_the_stale_quote_and_is_tried_again(settings, caplog):
    settings.MF_PART_QUOTE_CACHE_S = 10
    checked = _checked()
    key = views._quote_key(checked, None, "")
    facts, quote, promise = views._quoted(checked, None, "")
    cache.set(key, ((facts, quote, promise), time.time() - 1), timeout=60)
    # The same key (parameters are keyed by their hash), but nothing to compute from.
    broken = {**checked, "parameters": None}
    assert views._quote_key(broken, None, "") == key

    assert views._quoted(broken, None, "")[1] == quote
    _wait_for_requote(key)
    assert "could not be computed again" in caplog.text
    assert cache.get(key)[0][1] == quote
    assert key not in views._requoting  # the next visit past the period starts another
