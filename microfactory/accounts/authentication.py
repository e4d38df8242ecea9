"""`Authorization: Token <token>` against hashed tokens (django-rest-knox), recording last use.

Knox looks a token up by its first characters and compares SHA-512 digests in constant time;
an expired token is refused and deleted when it is used. This subclass adds what knox lacks:
the token's last use, and a 401 (not a 500) for a header that is not UTF-8. It leaves out
knox's sweep of the user's other tokens on every request (a query each time, a third of a
cached catalog read's time: benchmarks/web.py); an expired token is refused however long it
stays in the table.
"""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from knox.auth import TokenAuthentication
from rest_framework import exceptions

from microfactory.accounts import services


class ApiTokenAuthentication(TokenAuthentication):  # type: ignore[misc]  # knox ships no types
    def authenticate_credentials(self, token: bytes) -> tuple[AbstractBaseUser, Any]:
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        user, auth_token = super().authenticate_credentials(token)
        services.api_token_used(token=auth_token)
        return user, auth_token

    def _cleanup_token(self, auth_token: Any) -> bool:
        """Knox's: True (and the token deleted) when this token has expired; unlike knox,
        without reading the user's other tokens."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False
