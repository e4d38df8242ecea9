"""Write paths for accounts: API tokens (made, revoked, their use recorded) and the TOTP device
that a second factor is checked against (enrolled, checked with throttling, reset).

Who must use a second factor: staff (the admin site) and catalog admins (their scripts run in
the factory), and anyone who set one up of their own accord. MFA guards interactive logins
(microfactory.accounts.middleware); an API token is the machine path and is made only from a
session that has passed it.
"""

import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Q
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from microfactory.accounts.models import ApiToken
from microfactory.errors import DomainError
from orders.models import Membership


class TokenRefused(DomainError):
    """A token that cannot be made (too many already) or revoked (not the user's own)."""


# --- API tokens ------------------------------------------------------------------------------


def api_token_create(
    *, user: AbstractBaseUser, name: str, expires_in: timedelta | None
) -> tuple[ApiToken, str]:
    """A new token for the user and the token itself: the only time it exists in clear.

    Knox stores its SHA-512 digest and its first characters (the prefix it is looked up by);
    `expires_in=None` makes a token that lasts until it is revoked.
    """
    name = name.strip()
    if not name:
        raise TokenRefused("give the token a name: what will use it?")
    with transaction.atomic():
        # Locks the user's row so two concurrent requests cannot both pass the count.
        get_user_model()._default_manager.select_for_update().filter(pk=user.pk).first()
        if api_token_room(user=user) <= 0:
            raise TokenRefused(
                f"at most {settings.API_TOKENS_PER_USER} tokens per user: revoke one first"
            )
        token: ApiToken
        secret: str
        token, secret = ApiToken.objects.create(user=user, expiry=expires_in, name=name[:100])
    return token, secret


def api_token_room(*, user: AbstractBaseUser) -> int:
    """How many more tokens the user may have (API_TOKENS_PER_USER)."""
    count: int = ApiToken.objects.filter(user=user).count()
    return int(settings.API_TOKENS_PER_USER) - count


def api_token_revoke(*, user: AbstractBaseUser, token_id: int) -> ApiToken:
    """Deletes one of the user's tokens: the next request with it is a 401."""
    token: ApiToken | None = ApiToken.objects.filter(user=user, pk=token_id).first()
    if token is None:
        raise TokenRefused("no such token")
    token.delete()
    return token


def api_token_used(*, token: ApiToken) -> None:
    """Records that the token authenticated a request, at most once per resolution period:
    a conditional UPDATE, so a busy client costs one write a minute, not one per request."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.API_TOKEN_LAST_USED_RESOLUTION_S)
    if token.last_used_at is not None and token.last_used_at >= stale:
        return  # as read with the token: recent enough, no query (and no write lock on SQLite)
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)
    ).update(last_used_at=now)


# --- Second factor (TOTP) --------------------------------------------------------------------


def mfa_verified(user: object) -> bool:
    """Whether this request's session passed the second factor (django-otp's OTPMiddleware
    gives request.user `is_verified()`)."""
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified()) if callable(is_verified) else False


def mfa_required(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Staff, superusers and catalog admins must pass a second factor after their password."""
    return mfa_status(user).required


@dataclass(frozen=True)
class MfaStatus:
    required: bool  # staff, superuser or catalog admin
    enrolled: bool  # has a confirmed device (then a code is asked for, required or not)


def mfa_status(user: AbstractBaseUser | AnonymousUser) -> MfaStatus:
    """Whether the user must use a second factor and whether they enrolled: one SELECT,
    asked by the middleware on every request of a signed-in user whose session has not passed
    a code (most requests of most users). Written out (`_mfa_query`) rather than built by the
    ORM: building and compiling the annotated query took 1.2 ms of CPU for a 0.03 ms lookup,
    a sixth of a part page's time (benchmarks/README.md, "Web tier")."""
    if not user.is_authenticated:
        return MfaStatus(required=False, enrolled=False)
    staff = bool(getattr(user, "is_staff", False) or getattr(user, "is_superuser", False))
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(
            _mfa_query(db.vendor), [user.pk, True, user.pk, Membership.Role.CATALOG_ADMIN.value]
        )
        enrolled, catalog_admin = cursor.fetchone()
    return MfaStatus(required=staff or bool(catalog_admin), enrolled=bool(enrolled))


@functools.cache
def _mfa_query(vendor: str) -> str:
    """Does the user have a confirmed device; are they a catalog admin anywhere (a backend's
    SQL; parameters: user, True, user, the catalog admin role)."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name

    def column(model: Any, name: str) -> str:
        return quote(model._meta.get_field(name).column)

    return (
        f"SELECT EXISTS(SELECT 1 FROM {quote(TOTPDevice._meta.db_table)}"
        f" WHERE {column(TOTPDevice, 'user')} = %s AND {column(TOTPDevice, 'confirmed')} = %s),"
        f" EXISTS(SELECT 1 FROM {quote(Membership._meta.db_table)}"
        f" WHERE {column(Membership, 'user')} = %s AND {column(Membership, 'role')} = %s)"
    )


def mfa_device(user: AbstractBaseUser | AnonymousUser) -> TOTPDevice | None:
    """The user's confirmed TOTP device, if they have enrolled one."""
    if not user.is_authenticated:
        return None
    device: TOTPDevice | None = (
        TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    )
    return device


def mfa_enrolment(*, user: AbstractBaseUser) -> TOTPDevice:
    """The device being enrolled: a fresh secret, kept unconfirmed until a code from it is
    entered (so a QR code that was never scanned protects nothing and locks nobody out)."""
    device: TOTPDevice | None = (
        TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    )
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)
    return device


@dataclass(frozen=True)
class CodeCheck:
    """A code's verdict; `retry_after_s` is set when the device refuses tries for now."""

    ok: bool
    retry_after_s: int | None = None


def mfa_check(*, device: TOTPDevice, code: str) -> CodeCheck:
    """Checks a code against the device, under django-otp's throttle: after n wrong codes in a
    row the device refuses every code, even the right one, for OTP_TOTP_THROTTLE_FACTOR x
    2^(n-1) seconds. A code is accepted once (a replayed one is wrong)."""
    code = "".join(code.split())
    with transaction.atomic():
        # One check at a time per device: concurrent tries cannot slip past the throttle.
        locked: TOTPDevice = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        allowed, why = locked.verify_is_allowed()
        if not allowed:
            return CodeCheck(ok=False, retry_after_s=_seconds_until(why))
        if locked.verify_token(code):  # a wrong or malformed code counts as a failure
            if not locked.confirmed:
                locked.confirmed = True
                locked.save(update_fields=["confirmed"])
                # One device per user: earlier unconfirmed tries are no longer needed.
                TOTPDevice.objects.filter(user_id=locked.user_id, confirmed=False).delete()
            return CodeCheck(ok=True)
    return CodeCheck(ok=False)


def _seconds_until(why: dict[str, Any] | None) -> int:
    locked_until = (why or {}).get("locked_until")
    if locked_until is None:
        return 1
    return max(1, int((locked_until - timezone.now()).total_seconds() + 0.999))


def mfa_reset(*, user: AbstractBaseUser) -> int:
    """Removes every OTP device of the user (a lost phone): their sessions lose the second
    factor at once, and their next login asks them to enrol again. Returns how many."""
    deleted: int = TOTPDevice.objects.filter(user=user).delete()[0]
    return deleted
