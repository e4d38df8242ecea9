"""The site's absolute address, for links that leave the page: QR codes on travelers and
labels, passport URLs, e-mails, webhook payloads.

Inside a request it is the address the request came to (scheme and Host, as Django checked
them against ALLOWED_HOSTS), so a label printed from http://127.0.0.1:8001/ scans back to
port 8001. Elsewhere (Celery tasks, commands) it is settings.SITE_URL (MF_SITE_URL; `make run`
sets it from PORT for every process it starts).

The request's address is kept in a context variable by SiteUrlMiddleware rather than passed
down: the value builders that print URLs (production.station, production.job_values,
production.passport, orders.notifications) are called from views and from tasks alike, and
should not take an HTTP request to tell which.
"""

from collections.abc import Callable
from contextvars import ContextVar

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

_request_site: ContextVar[str | None] = ContextVar("request_site", default=None)


def site_url() -> str:
    """`scheme://host[:port]` without a trailing slash: the current request's, else the
    setting's."""
    return _request_site.get() or str(settings.SITE_URL)


def request_site_url(request: HttpRequest) -> str:
    """The address a request came to (a DisallowedHost request never gets this far:
    CommonMiddleware has already asked for its host)."""
    return f"{request.scheme}://{request.get_host()}"


class SiteUrlMiddleware:
    """Makes site_url() answer with the request's address while the request is served
    (transaction.on_commit callbacks included)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        token = _request_site.set(request_site_url(request))
        try:
            return self.get_response(request)
        finally:
            _request_site.reset(token)
