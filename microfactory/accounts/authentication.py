"""`Authorization: Token <token>` against hashed tokens (django-rest-knox), recording last use.

As knox does, a token is looked up by its first characters and its SHA-512 digest compared in
constant time; an expired token is refused and deleted when it is used. What this adds to
knox: the token's last use, and a 401 (not a 500) for a header that is not UTF-8. What it
leaves out: knox's sweep of the user's other tokens on every request (a query each time); an
expired token is refused however long it stays in the table.

The token and its user are read with one SELECT written here, their values converted by each
field's own database converters: the ORM's select_related query for the same row cost 0.7 ms
of CPU to build and compile (for a 0.02 ms lookup), and QuerySet.raw 0.3 ms for the two rows:
more than half of a cached catalog read's CPU (benchmarks/web.py).
"""

import binascii
import functools
from hmac import compare_digest
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS
from rest_framework import exceptions

from microfactory.accounts import services
from microfactory.accounts.models import ApiToken


def _token_rows(key: str) -> list[tuple[ApiToken, AbstractBaseUser]]:
    """The tokens whose first characters are `key`, each with its user: one SELECT."""
    db = connections[DEFAULT_DB_ALIAS]
    sql, token_converters, user_converters = _token_query(db.vendor)
    with db.cursor() as cursor:
        cursor.execute(sql, [key])
        rows = cursor.fetchall()
    split = len(token_converters)
    return [
        (
            _instance(ApiToken, row[:split], token_converters, db),
            _instance(get_user_model(), row[split:], user_converters, db),
        )
        for row in rows
    ]


Converters = list[tuple[Any, list[Any]]]  # per concrete field: its column, its converters


@functools.cache
def _token_query(vendor: str) -> tuple[str, Converters, Converters]:
    """The SELECT of a token and its user, and each column's converters (a backend's)."""
    db = connections[DEFAULT_DB_ALIAS]
    User = get_user_model()
    quote = db.ops.quote_name

    def converters(model: Any) -> Converters:
        columns = [field.get_col(model._meta.db_table) for field in model._meta.concrete_fields]
        return [
            (column, db.ops.get_db_converters(column) + column.field.get_db_converters(db))
            for column in columns
        ]

    columns = [f"t.{quote(f.column)}" for f in ApiToken._meta.concrete_fields] + [
        f"u.{quote(f.column)}" for f in User._meta.concrete_fields
    ]
    sql = (
        f"SELECT {', '.join(columns)} FROM {quote(ApiToken._meta.db_table)} t"
        f" JOIN {quote(User._meta.db_table)} u ON u.{quote(User._meta.pk.column)}"
        f" = t.{quote(ApiToken._meta.get_field('user').column)}"
        f" WHERE t.{quote(ApiToken._meta.get_field('token_key').column)} = %s"
    )
    return sql, converters(ApiToken), converters(User)


def _instance(model: Any, values: tuple[Any, ...], converters: Converters, db: Any) -> Any:
    """A model instance from its concrete fields' column values, converted as the ORM would
    (SQLite hands back datetimes as text, for one)."""
    converted = []
    for value, (column, functions) in zip(values, converters, strict=True):
        for convert in functions:
            value = convert(value, column, db)
        converted.append(value)
    return model.from_db(db.alias, None, converted)


class ApiTokenAuthentication(TokenAuthentication):  # type: ignore[misc]  # knox ships no types
    def authenticate_credentials(self, token: bytes) -> tuple[AbstractBaseUser, ApiToken]:
        refused = exceptions.AuthenticationFailed("Invalid token.")
        try:
            text = token.decode("utf-8")
            digest = hash_token(text)
        except (UnicodeDecodeError, TypeError, binascii.Error):
            raise refused from None
        found = next(
            (
                (auth_token, user)
                for auth_token, user in _token_rows(text[: CONSTANTS.TOKEN_KEY_LENGTH])
                if compare_digest(digest, auth_token.digest)
            ),
            None,
        )
        if found is None or self._cleanup_token(found[0]):
            raise refused
        auth_token, user = found
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        auth_token.user = user
        services.api_token_used(token=auth_token)
        return user, auth_token

    def _cleanup_token(self, auth_token: ApiToken) -> bool:
        """True (and the token deleted) when this token has expired; unlike knox's, without
        reading the user's other tokens."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False
