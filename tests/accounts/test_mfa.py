"""Two-factor authentication (issue 18): staff, superusers and catalog admins must enrol an
authenticator app and enter a code from it after their password, on /login/ and
/admin/login/, before any page, the admin or the API's session works; wrong codes are
refused and, repeated, throttled; requesters are not forced; API tokens are unaffected.

Codes are real: computed from the device's key (RFC 6238, django_otp.oath.totp)."""

import base64
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from microfactory.accounts.services import api_token_create
from tests.builders import login_with_mfa, make_totp_device, make_user, totp_code
from tests.test_content_security import _InlineCode, policy

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"  # tests.builders.make_user's
SETUP = "/account/mfa/setup/"
VERIFY = "/account/mfa/verify/"


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Pages render {% static %} without a collectstatic manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def staff(organisation):
    user = make_user("boss", organisation=organisation, role="manager")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def password_login(client: Client, username: str, url: str = "/login/") -> None:
    response = client.post(url, {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:500]


def verified(client: Client) -> bool:
    return "otp_device_id" in client.session


def assert_strict_page(response) -> None:
    """Our pages under the site's policy, nothing inline that it would block."""
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    page = _InlineCode(None)
    page.feed(response.content.decode())
    assert page.blocked == []
    assert policy(response)["script-src"][0] == "'self'"


def test_staff_without_a_device_must_enrol_before_any_page(client, staff):
    password_login(client, "boss")
    for url in ("/", "/orders/", "/station/", "/admin/", "/account/tokens/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(f"{SETUP}?next="), url

    page = client.get(f"{SETUP}?next=/orders/")
    assert page.status_code == 200
    assert page["Cache-Control"].startswith("max-age=0")  # the secret is never cached
    assert_strict_page(page)
    text = page.content.decode()
    # The QR code is an <img> of an SVG data: URI (img-src allows data:), holding the
    # otpauth:// address of the device being enrolled, whose key is also written out.
    device = TOTPDevice.objects.get(user=staff)
    assert not device.confirmed
    qr = re.search(r'<img class="qr" src="data:image/svg\+xml;base64,([^"]+)"', text)
    assert qr and b'<svg xmlns="http://www.w3.org/2000/svg"' in base64.b64decode(qr.group(1))
    secret = re.search(r'<code class="secret" id="mfa-secret">([A-Z2-7 ]+)</code>', text)
    assert secret and base64.b32decode(secret.group(1).replace(" ", "")) == device.bin_key
    assert "otpauth://totp/Microfactory%3Aboss?" in device.config_url

    wrong = client.post(SETUP, {"code": "000000", "next": "/orders/"})
    assert wrong.status_code == 400 and "not right" in wrong.content.decode()
    assert client.get("/orders/").status_code == 302

    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None)
    right = client.post(SETUP, {"code": totp_code(device), "next": "/orders/"})
    assert (right.status_code, right["Location"]) == (302, "/orders/")
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert verified(client)
    for url in ("/", "/orders/", "/station/", "/admin/", "/account/tokens/"):
        assert client.get(url).status_code == 200, url


def test_staff_with_a_device_enter_a_code_after_the_admin_login(client, staff):
    device = make_totp_device(staff)
    password_login(client, "boss", url="/admin/login/")
    response = client.get("/admin/")
    assert (response.status_code, response["Location"]) == (302, f"{VERIFY}?next=%2Fadmin%2F")
    assert client.get("/admin/catalog/partrevision/").status_code == 302

    page = client.get(f"{VERIFY}?next=/admin/")
    assert page.status_code == 200
    assert_strict_page(page)

    wrong = client.post(VERIFY, {"code": "123456", "next": "/admin/"})
    assert wrong.status_code == 400
    assert not verified(client)
    assert client.get("/admin/").status_code == 302

    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None)
    session_before = client.session.session_key
    right = client.post(VERIFY, {"code": totp_code(device), "next": "/admin/"})
    assert (right.status_code, right["Location"]) == (302, "/admin/")
    assert verified(client)
    assert client.session.session_key != session_before  # a new session key once verified
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/catalog/partrevision/").status_code == 200


def test_our_login_page_asks_for_the_code_too(client, staff):
    device = make_totp_device(staff)
    response = client.post("/login/", {"username": "boss", "password": PASSWORD, "next": "/cart/"})
    assert response["Location"] == "/cart/"
    assert client.get("/cart/")["Location"] == f"{VERIFY}?next=%2Fcart%2F"
    response = client.post(VERIFY, {"code": totp_code(device), "next": "/cart/"})
    assert response["Location"] == "/cart/"
    assert client.get("/cart/").status_code == 200


def test_repeated_wrong_codes_lock_the_device_even_against_the_right_one(client, staff, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60  # a minute after the first wrong code
    device = make_totp_device(staff)
    password_login(client, "boss")
    assert client.post(VERIFY, {"code": "111111"}).status_code == 400

    refused = client.post(VERIFY, {"code": totp_code(device)})
    assert refused.status_code == 429
    assert 55 <= int(refused["Retry-After"]) <= 60
    assert "Too many wrong codes" in refused.content.decode()
    assert not verified(client)
    assert TOTPDevice.objects.get(pk=device.pk).throttling_failure_count == 1

    # A minute later the right code gets in (and the count starts again).
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=device.created_at - timedelta(minutes=2)
    )
    response = client.post(VERIFY, {"code": totp_code(device)})
    assert response.status_code == 302 and verified(client)
    assert TOTPDevice.objects.get(pk=device.pk).throttling_failure_count == 0


def test_the_throttle_doubles_with_each_wrong_code(client, staff):
    """Default factor 1: the n-th wrong code in a row closes the device for 2^(n-1) s."""
    device = make_totp_device(staff)
    password_login(client, "boss")
    for failures in range(1, 11):
        TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None)
        assert client.post(VERIFY, {"code": "000000"}).status_code == 400
        assert TOTPDevice.objects.get(pk=device.pk).throttling_failure_count == failures
    # Ten wrong codes: 2^9 = 512 s before any code counts.
    refused = client.post(VERIFY, {"code": totp_code(device)})
    assert refused.status_code == 429 and 500 <= int(refused["Retry-After"]) <= 512


def test_a_code_is_accepted_only_once(staff):
    device = make_totp_device(staff)
    first, second = Client(), Client(REMOTE_ADDR="203.0.113.5")
    code = totp_code(device)
    password_login(first, "boss")
    assert first.post(VERIFY, {"code": code}).status_code == 302
    password_login(second, "boss")
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None)
    assert second.post(VERIFY, {"code": code}).status_code == 400  # replayed
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None)
    # The drift the first login recorded (it is -1 when a 30 s window ended between making the
    # code and posting it): the next code is the one after the window used, whenever that was.
    device.refresh_from_db()
    assert second.post(VERIFY, {"code": totp_code(device, steps_ahead=1)}).status_code == 302


def test_a_catalog_admin_is_forced_to_enrol(client, organisation):
    make_user("cat", organisation=organisation, role="catalog_admin")  # not staff
    password_login(client, "cat")
    assert client.get("/")["Location"] == f"{SETUP}?next=%2F"
    assert client.get("/api/v1/orders/").status_code == 403


@pytest.mark.parametrize("role", ["requester", "approver", "operator", "manager"])
def test_other_members_are_not_forced(client, organisation, role):
    make_user("member", organisation=organisation, role=role)
    password_login(client, "member")
    assert client.get("/").status_code == 200
    assert client.get("/orders/").status_code == 200
    assert client.get("/api/v1/orders/").status_code == 200
    assert not TOTPDevice.objects.exists()


def test_a_member_who_enrolled_of_their_own_accord_is_asked_for_the_code(client, user):
    device = make_totp_device(user)
    password_login(client, "req")
    assert client.get("/orders/")["Location"] == f"{VERIFY}?next=%2Forders%2F"
    client.post(VERIFY, {"code": totp_code(device)})
    assert client.get("/orders/").status_code == 200


def test_a_password_alone_cannot_enrol_a_second_device(client, staff):
    """With the password but not the phone, the enrolment page only leads to the code."""
    make_totp_device(staff)
    password_login(client, "boss")
    response = client.get(f"{SETUP}?next=/admin/")
    assert response["Location"] == f"{VERIFY}?next=%2Fadmin%2F"
    assert client.post(SETUP, {"code": "000000"}).status_code == 302
    assert TOTPDevice.objects.filter(user=staff).count() == 1


def test_the_api_refuses_an_unverified_session_but_takes_a_token(client, staff):
    make_totp_device(staff)
    _, token = api_token_create(user=staff, name="CMMS", expires_in=None)
    password_login(client, "boss")
    refused = client.get("/api/v1/orders/")
    assert refused.status_code == 403
    assert "two-factor" in refused.json()["message"]
    # API tokens are the machine path: MFA covers interactive logins only.
    assert Client().get("/api/v1/orders/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    # The same session, sending a token, is judged by the token alone.
    assert client.get("/api/v1/orders/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    bad = client.get("/api/v1/orders/", HTTP_AUTHORIZATION="Token mf_nope")
    assert bad.status_code == 401  # no falling back to the session


def test_next_never_leaves_the_site(client, staff):
    device = make_totp_device(staff)
    password_login(client, "boss")
    response = client.post(VERIFY, {"code": totp_code(device), "next": "https://evil.example/"})
    assert response["Location"] == "/welcome/"  # where a login lands, on this site


def test_logging_out_works_before_the_code(client, staff):
    make_totp_device(staff)
    password_login(client, "boss")
    assert client.post("/logout/")["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


def test_mfa_reset_removes_the_device_and_the_sessions_second_factor(client, staff):
    login_with_mfa(client, staff)
    assert client.get("/admin/").status_code == 200
    out = StringIO()
    call_command("mfa_reset", "boss", stdout=out)
    assert "removed 1 device(s) of boss" in out.getvalue()
    assert not TOTPDevice.objects.filter(user=staff).exists()
    assert client.get("/admin/")["Location"] == f"{SETUP}?next=%2Fadmin%2F"


def test_the_admin_lists_devices_without_their_keys(client, staff, organisation):
    other = make_user("other", organisation=organisation)
    device = make_totp_device(other)
    login_with_mfa(client, staff)
    listing = client.get("/admin/otp_totp/totpdevice/").content.decode()
    assert "other" in listing and device.key not in listing
    page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert page.status_code == 200 and device.key not in page.content.decode()
    # Deleting the device in the admin is the other way to reset it.
    response = client.post(
        f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"}, follow=False
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(pk=device.pk).exists()


def test_seed_demo_admin_must_enrol(client):
    call_command("seed_demo", "--no-order", stdout=StringIO())
    response = client.post("/admin/login/", {"username": "admin", "password": "microfactory"})
    assert response.status_code == 302
    assert client.get("/admin/")["Location"].startswith(SETUP)
    assert get_user_model().objects.get(username="admin").is_staff
