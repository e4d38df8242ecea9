"""API tokens (issue 18): stored hashed with a prefix to look them up by (django-rest-knox),
shown once, revocable, with their last use; made on /account/tokens/, in the admin or with
`manage.py api_token_create`; the clear-text tokens of before keep working, hashed."""

import hashlib
import importlib
import re
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from microfactory.accounts.models import ApiToken
from microfactory.accounts.services import api_token_create
from tests.builders import login_with_mfa, make_user

pytestmark = pytest.mark.django_db

TOKENS = "/account/tokens/"


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def api_get(token: str, url: str = "/api/v1/orders/"):
    return Client().get(url, HTTP_AUTHORIZATION=f"Token {token}")


def stored_values() -> str:
    """Every column of every token row, as text: where a token in clear would show."""
    return repr(list(ApiToken.objects.values()))


def test_a_token_made_on_the_page_is_shown_once_and_stored_hashed(client, user):
    client.force_login(user)
    response = client.post(TOKENS, {"name": "CMMS", "expires": "90"})
    assert response.status_code == 201
    assert response["Cache-Control"].startswith("max-age=0")
    token = re.search(r'id="new-token-value">([^<]+)<', response.content.decode()).group(1)
    assert token.startswith("mf_") and len(token) == 3 + 64

    row = ApiToken.objects.get(user=user)
    assert (row.name, row.token_key) == ("CMMS", token[:15])
    assert row.digest == hashlib.sha512(token.encode()).hexdigest()
    assert token not in stored_values()
    assert timedelta(days=89) < row.expiry - timezone.now() <= timedelta(days=90)

    listing = client.get(TOKENS).content.decode()
    assert token not in listing
    assert f"{row.token_key}…" in listing and "CMMS" in listing
    assert api_get(token).status_code == 200


def test_a_token_records_its_last_use_at_most_once_a_minute(user):
    row, token = api_token_create(user=user, name="CMMS", expires_in=None)
    assert row.last_used_at is None
    assert api_get(token).status_code == 200
    first = ApiToken.objects.get(pk=row.pk).last_used_at
    assert first is not None
    assert api_get(token).status_code == 200
    assert ApiToken.objects.get(pk=row.pk).last_used_at == first  # no write per request
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=first - timedelta(minutes=2))
    assert api_get(token).status_code == 200
    assert ApiToken.objects.get(pk=row.pk).last_used_at > first - timedelta(seconds=1)


def test_a_revoked_token_stops_working(client, user):
    row, token = api_token_create(user=user, name="CMMS", expires_in=None)
    client.force_login(user)
    response = client.post(f"{TOKENS}{row.pk}/revoke/")
    assert response["Location"] == TOKENS
    assert "revoked" in client.get(TOKENS).content.decode()
    assert not ApiToken.objects.exists()
    assert api_get(token).status_code == 401


def test_nobody_revokes_another_users_token(client, user, organisation):
    row, token = api_token_create(user=user, name="plant link", expires_in=None)
    other = make_user("other", organisation=organisation)
    client.force_login(other)
    client.post(f"{TOKENS}{row.pk}/revoke/")
    assert ApiToken.objects.filter(pk=row.pk).exists()
    assert api_get(token).status_code == 200
    assert "plant link" not in client.get(TOKENS).content.decode()
    assert client.get(f"{TOKENS}{row.pk}/revoke/").status_code == 405


def test_an_expired_token_is_refused_and_removed(user):
    row, token = api_token_create(user=user, name="CMMS", expires_in=timedelta(days=1))
    ApiToken.objects.filter(pk=row.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert api_get(token).status_code == 401
    assert not ApiToken.objects.filter(pk=row.pk).exists()


def test_a_deactivated_users_token_is_refused(user):
    _, token = api_token_create(user=user, name="CMMS", expires_in=None)
    assert api_get(token).status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert api_get(token).status_code == 401


def test_a_token_request_is_its_users_with_the_users_fields_read_as_the_orm_reads_them(user):
    """The token and its user are read by one SELECT of our own (accounts.authentication):
    the request's user and token are the same rows, with the same values, as the ORM's."""
    from django.contrib.auth.models import User
    from rest_framework.test import APIRequestFactory

    from microfactory.accounts.authentication import ApiTokenAuthentication

    row, token = api_token_create(user=user, name="CMMS", expires_in=timedelta(days=3))
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {token}")
    request_user, request_token = ApiTokenAuthentication().authenticate(request)
    stored_user, stored_token = User.objects.get(pk=user.pk), ApiToken.objects.get(pk=row.pk)
    for field in User._meta.concrete_fields:
        assert getattr(request_user, field.attname) == getattr(stored_user, field.attname)
    for field in ApiToken._meta.concrete_fields:
        if field.name != "last_used_at":  # written by this very request
            assert getattr(request_token, field.attname) == getattr(stored_token, field.attname)
    assert request_token.user is request_user
    assert isinstance(request_token.expiry, datetime) and request_token.expiry.tzinfo is not None


@pytest.mark.parametrize(
    "header",
    [
        "Token mf_0000000000000000",
        "Token ",
        "Token a b",
        "Token \xff\xfe",  # not UTF-8 once the header's bytes are read back
        "Token " + "9" * 5000,
    ],
)
def test_a_bad_token_is_a_401_never_a_500(user, header):
    api_token_create(user=user, name="CMMS", expires_in=None)
    response = Client(raise_request_exception=False).get(
        "/api/v1/orders/", HTTP_AUTHORIZATION=header
    )
    assert response.status_code == 401, response.content


def test_the_page_refuses_a_nameless_token_and_more_than_the_limit(client, user, settings):
    settings.API_TOKENS_PER_USER = 2
    client.force_login(user)
    assert client.post(TOKENS, {"name": "  ", "expires": ""}).status_code == 400
    assert client.post(TOKENS, {"name": "a", "expires": ""}).status_code == 201
    assert client.post(TOKENS, {"name": "b", "expires": "bogus"}).status_code == 400
    assert client.post(TOKENS, {"name": "b", "expires": ""}).status_code == 201
    refused = client.post(TOKENS, {"name": "c", "expires": "30"})
    assert refused.status_code == 400 and "at most 2 tokens" in refused.content.decode()
    assert ApiToken.objects.filter(user=user).count() == 2
    assert ApiToken.objects.filter(expiry__isnull=True).count() == 2


def test_the_command_prints_a_working_token(user):
    out = StringIO()
    call_command("api_token_create", "req", "--name", "CMMS", "--expires-days", "30", stdout=out)
    token = out.getvalue().strip()
    assert api_get(token).status_code == 200
    assert ApiToken.objects.get(user=user).name == "CMMS"
    with pytest.raises(CommandError, match="no user"):
        call_command("api_token_create", "nobody", stdout=StringIO())


def test_the_admin_makes_a_token_shown_once_and_lists_prefixes(client, user, organisation):
    boss = make_user("boss", organisation=organisation)
    boss.is_staff = boss.is_superuser = True
    boss.save()
    login_with_mfa(client, boss)
    response = client.post(
        "/admin/accounts/apitoken/add/", {"user": user.pk, "name": "CMMS", "expires": ""}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = re.search(r'id="new-token-value">([^<]+)<', response.content.decode()).group(1)
    assert api_get(token).status_code == 200
    row = ApiToken.objects.get(user=user)
    assert row.expiry is None and token not in stored_values()
    listing = client.get("/admin/accounts/apitoken/").content.decode()
    assert row.token_key in listing and token not in listing
    assert "message" not in str(client.cookies.get("messages", ""))  # not in a cookie either
    change = client.get(f"/admin/accounts/apitoken/{row.pk}/change/").content.decode()
    assert token not in change and row.digest not in change
    # Revoking in the admin is deleting.
    client.post(f"/admin/accounts/apitoken/{row.pk}/delete/", {"post": "yes"})
    assert api_get(token).status_code == 401


def test_the_schema_names_the_token_scheme(client, user):
    client.force_login(user)
    schema = client.get("/api/v1/schema/?format=json").json()
    scheme = schema["components"]["securitySchemes"]["tokenAuth"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "Token <token>" in scheme["description"]
    operation = schema["paths"]["/api/v1/orders/"]["get"]
    assert {"tokenAuth": []} in operation["security"]


# --- the clear-text tokens of before ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)  # SQLite's schema editor needs no open transaction
def test_the_migration_hashes_the_old_clear_text_tokens_which_keep_working(user):
    """DRF's authtoken table as it was (40 hex characters in clear): after the migration the
    same key authenticates, only its digest is stored, and the clear-text table is gone."""
    old_key = "38f6a956be37104584c9c410da0021af26bc703e"
    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE TABLE authtoken_token ("key" varchar(40) NOT NULL PRIMARY KEY, '
            "created timestamp with time zone NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute(
            'INSERT INTO authtoken_token ("key", created, user_id) VALUES (%s, %s, %s)',
            [old_key, timezone.now() - timedelta(days=400), user.pk],
        )
    migration = importlib.import_module(
        "microfactory.accounts.migrations.0002_hash_plain_drf_tokens"
    )
    with connection.schema_editor() as editor:
        migration.hash_plain_tokens(apps, editor)

    assert "authtoken_token" not in connection.introspection.table_names()
    row = ApiToken.objects.get(user=user)
    assert old_key not in stored_values()
    assert row.token_key == old_key[:15]
    assert timezone.now() - row.created > timedelta(days=399)  # its age is kept
    assert api_get(old_key).status_code == 200
    assert api_get(old_key[:-1] + "0").status_code == 401
