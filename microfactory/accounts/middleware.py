"""Nothing past the password for a user who owes a second factor and has not given it.

Runs after django-otp's OTPMiddleware, which marks the session's user verified
(`user.is_verified()`) once a code from their device was accepted. A user who must use MFA
(staff, superusers, catalog admins) or who enrolled a device of their own accord, signed in
with a password but not yet verified, is sent to enrol (no device yet) or to enter a code
(`?next=` the page they asked for), on every page and the admin (/admin/ included), and
their session gets a 403 on the API. Exempt: the enrolment and code pages themselves, logging
in and out, and static files.

API requests that carry `Authorization: Token ...` are left to the API's token
authentication, which never falls back to the session: MFA covers interactive logins, tokens
are the machine path (docs/operations.md, "Two-factor authentication").
"""

import functools
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from knox.settings import knox_settings

from microfactory.accounts import services

API_PREFIX = "/api/"


class MFARequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    @functools.cached_property
    def exempt_prefixes(self) -> tuple[str, ...]:
        """Reversed once (six reverse() calls were a tenth of a signed-in request's check)."""
        return _exempt_prefixes()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self._refusal(request) or self.get_response(request)

    def _refusal(self, request: HttpRequest) -> HttpResponse | None:
        user = request.user
        if not user.is_authenticated or services.mfa_verified(user):
            return None
        path = request.path
        if path.startswith(self.exempt_prefixes):
            return None
        if path.startswith(API_PREFIX) and _has_token_header(request):
            return None
        status = services.mfa_status(user)
        if not (status.required or status.enrolled):
            return None
        if path.startswith(API_PREFIX):
            return JsonResponse(
                {
                    "message": "this session has not passed two-factor authentication: "
                    "enter a code at /account/mfa/verify/, or use an API token"
                },
                status=403,
            )
        target = "accounts:mfa-verify" if status.enrolled else "accounts:mfa-setup"
        return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")


def _exempt_prefixes() -> tuple[str, ...]:
    return (
        reverse("accounts:mfa-setup"),
        reverse("accounts:mfa-verify"),
        reverse("login"),
        reverse("logout"),
        reverse("admin:logout"),
        "/" + settings.STATIC_URL.lstrip("/"),
    )


def _has_token_header(request: HttpRequest) -> bool:
    scheme = request.headers.get("Authorization", "").split(" ", 1)[0]
    return scheme.lower() == str(knox_settings.AUTH_HEADER_PREFIX).lower()
