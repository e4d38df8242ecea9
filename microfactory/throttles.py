"""Brute-force and flood limits: the login lockout's page (django-axes) and the API's throttles.

Settings block "Login lockout and API throttles"; docs/operations.md explains both.
"""

import logging
import math
from typing import TYPE_CHECKING, Any

import redis
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

if TYPE_CHECKING:  # DRF imports this module while rest_framework.views is being imported
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

# Reads are never counted: a slow client polling its orders is not an attack, and the pages
# that poll must keep working while a script hammers the writes.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def client_address(request: HttpRequest) -> str | None:
    """The address axes counts failures against: the TCP peer, never a header the client sets."""
    return request.META.get("REMOTE_ADDR")


def login_locked_out(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any = None
) -> HttpResponse:
    """429 with Retry-After and a page saying when to try again (axes' AXES_LOCKOUT_CALLABLE).

    The cool-off restarts at each refused try (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT),
    so the whole cool-off from now is when the next try can succeed.
    """
    from axes.helpers import get_cool_off  # imports models: not while settings load

    cool_off = get_cool_off(request)
    seconds = math.ceil(cool_off.total_seconds()) if cool_off else 0
    response = render(
        request,
        "microfactory/locked_out.html",
        {"minutes": math.ceil(seconds / 60), "admin": request.path.startswith("/admin/")},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


def rate_for(scope: str) -> str | None:
    """A scope's rate as the settings say now (DRF's THROTTLE_RATES is read once, at import)."""
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
    return None if rate is None else str(rate)


class FailOpen(SimpleRateThrottle):
    """A throttle that lets the request through (logged) when its counters cannot be read.

    The counters live in the cache, Redis in production: while Redis is down an order must
    still be taken (its job rows are the outbox, sent once the broker is back), not refused
    with a 500 because a counter could not be read.
    """

    def allow_request(self, request: "Request", view: "APIView") -> bool:
        try:
            return super().allow_request(request, view)
        except (redis.RedisError, OSError) as error:
            logger.warning("%s not applied: the cache is unreachable (%s)", self.scope, error)
            return True


class UserWriteThrottle(FailOpen, UserRateThrottle):
    """An authenticated user's writes (POST, PUT, PATCH, DELETE), MF_API_WRITE_RATE_USER."""

    scope = "write_user"

    def get_rate(self) -> str | None:
        return rate_for(self.scope)

    def allow_request(self, request: "Request", view: "APIView") -> bool:
        if request.method in SAFE_METHODS or not request.user.is_authenticated:
            return True
        return super().allow_request(request, view)


class AnonWriteThrottle(FailOpen, AnonRateThrottle):
    """Anonymous writes per client address (REMOTE_ADDR), MF_API_WRITE_RATE_ANON."""

    scope = "write_anon"

    def get_rate(self) -> str | None:
        return rate_for(self.scope)

    def allow_request(self, request: "Request", view: "APIView") -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)
