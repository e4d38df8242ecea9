"""`Authorization: Token <token>` against hashed tokens (django-rest-knox), recording last use.

Knox looks a token up by its first characters and compares SHA-512 digests in constant time;
expired tokens are deleted as they are met. This subclass adds what knox lacks: the token's
last use, and a 401 (not a 500) for a header that is not UTF-8.
"""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
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
