"""Account pages: API tokens (make one, shown once; list; revoke) and the second factor
(enrol an authenticator app with a QR code; enter a code after the password).

The pages that show a secret (a new token, an enrolment QR code) are never cached.
"""

import base64
import io
from datetime import timedelta

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from microfactory.accounts import services
from microfactory.accounts.models import ApiToken
from microfactory.accounts.signed_in import signed_in_user

EXPIRY_CHOICES = [("30", "in 30 days"), ("90", "in 90 days"), ("365", "in a year"), ("", "never")]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="what will use it, e.g. “CMMS”")
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, initial="365", required=False)

    def expires_in(self) -> timedelta | None:
        days = self.cleaned_data.get("expires") or ""
        return timedelta(days=int(days)) if days else None


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=12,
        label="Code from your authenticator app",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


def _next_url(request: HttpRequest) -> str:
    """Where to go after the code: `next` if it is on this site, else the home page."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(settings.LOGIN_REDIRECT_URL)


# --- API tokens ------------------------------------------------------------------------------


@never_cache
@login_required
def tokens_page(request: HttpRequest) -> HttpResponse:
    """GET: the user's tokens. POST: a new token, shown on the page this once."""
    user = signed_in_user(request)
    form = TokenForm(request.POST if request.method == "POST" else None)
    created: tuple[ApiToken, str] | None = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                created = services.api_token_create(
                    user=user, name=form.cleaned_data["name"], expires_in=form.expires_in()
                )
            except services.TokenRefused as refused:
                form.add_error(None, str(refused))
        status = 201 if created else 400
        if created:
            form = TokenForm()
    context = {
        "form": form,
        "created": created[0] if created else None,
        "secret": created[1] if created else None,
        "tokens": ApiToken.objects.filter(user=user),
        "device": services.mfa_device(user),
        "mfa_required": services.mfa_required(user),
    }
    return render(request, "accounts/tokens.html", context, status=status)


@require_POST
@login_required
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = services.api_token_revoke(user=signed_in_user(request), token_id=token_id)
    except services.TokenRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Token {token.token_key}… ({token.name}) revoked.")
    return redirect("accounts:tokens")


# --- Second factor ---------------------------------------------------------------------------


def _qr_data_uri(device: TOTPDevice) -> str:
    """The otpauth:// address as an SVG QR code in a data: URI (the page's img-src allows
    data:, and the secret never goes to a file or another request)."""
    svg = io.BytesIO()
    segno.make(device.config_url, error="m").save(svg, kind="svg", scale=5, border=2)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.getvalue()).decode()


def _grouped(secret: str) -> str:
    return " ".join(secret[index : index + 4] for index in range(0, len(secret), 4))


@never_cache
@login_required
def mfa_setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: scan the QR code (or type the secret), enter a code.

    Only for a user without a confirmed device: adding or replacing one would let someone
    who has only the password get past the second factor. A lost device is reset by an
    administrator (`manage.py mfa_reset USER`, or the admin's TOTP devices)."""
    user = signed_in_user(request)
    if services.mfa_device(user) is not None:
        if services.mfa_verified(user):
            messages.info(request, "Two-factor authentication is already set up.")
            return redirect(_next_url(request))
        return redirect(f"{reverse('accounts:mfa-verify')}?{request.GET.urlencode()}")
    device = services.mfa_enrolment(user=user)
    form = CodeForm(request.POST if request.method == "POST" else None)
    check = None
    if request.method == "POST" and form.is_valid():
        check = services.mfa_check(device=device, code=form.cleaned_data["code"])
        if check.ok:
            _verified(request, device)
            messages.success(request, "Two-factor authentication is on.")
            return redirect(_next_url(request))
        _refused(form, check)
    context = {
        "form": form,
        "qr": _qr_data_uri(device),
        "secret": _grouped(base64.b32encode(device.bin_key).decode()),
        "next": _next_url(request),
        "required": services.mfa_required(user),
    }
    return _answer(render(request, "accounts/mfa_setup.html", context), form, check)


@never_cache
@login_required
def mfa_verify(request: HttpRequest) -> HttpResponse:
    """The second step of a login: a code from the enrolled device."""
    user = signed_in_user(request)
    device = services.mfa_device(user)
    if device is None:
        return redirect(f"{reverse('accounts:mfa-setup')}?{request.GET.urlencode()}")
    if services.mfa_verified(user):
        return redirect(_next_url(request))
    form = CodeForm(request.POST if request.method == "POST" else None)
    check = None
    if request.method == "POST" and form.is_valid():
        check = services.mfa_check(device=device, code=form.cleaned_data["code"])
        if check.ok:
            _verified(request, device)
            return redirect(_next_url(request))
        _refused(form, check)
    context = {"form": form, "next": _next_url(request)}
    return _answer(render(request, "accounts/mfa_verify.html", context), form, check)


def _verified(request: HttpRequest, device: TOTPDevice) -> None:
    """The session has passed the second factor: a new session key (what an attacker may have
    planted before now is worth nothing), the device recorded in it."""
    request.session.cycle_key()
    otp_login(request, device)


def _refused(form: CodeForm, check: services.CodeCheck) -> None:
    if check.retry_after_s is not None:
        form.add_error(
            "code",
            f"Too many wrong codes: no code is accepted for {check.retry_after_s} s, "
            "not even the right one. Wait, then enter a fresh one.",
        )
    else:
        form.add_error("code", "That code is not right (or was already used): try the next one.")


def _answer(
    response: HttpResponse, form: CodeForm, check: services.CodeCheck | None
) -> HttpResponse:
    """The code page again: 400 after a wrong code or an empty form, 429 with Retry-After
    while the device refuses codes."""
    if check is not None and check.retry_after_s is not None:
        response.status_code = 429
        response["Retry-After"] = str(check.retry_after_s)
    elif form.is_bound:
        response.status_code = 400
    return response
