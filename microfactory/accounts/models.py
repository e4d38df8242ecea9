"""API tokens: django-rest-knox's token, with a name, a number to revoke it by, and its last use.

Knox keeps only a SHA-512 digest of a token and its first 15 characters (`token_key`, the
prefix it is looked up by and shown as); the token itself is shown once, when it is made.
This model replaces knox's own (KNOX_TOKEN_MODEL), which has neither a name nor a last use.
"""

from datetime import datetime

from django.db import models
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS


class ApiToken(AbstractAuthToken):  # type: ignore[misc]  # knox ships no types
    # Knox makes the digest the primary key; a plain number is what pages and URLs name
    # instead (a digest in an address ends up in logs).
    id: "models.BigAutoField[int, int]" = models.BigAutoField(primary_key=True)
    digest: "models.CharField[str, str]" = models.CharField(
        max_length=CONSTANTS.DIGEST_LENGTH, unique=True, editable=False
    )
    name: "models.CharField[str, str]" = models.CharField(
        max_length=100, help_text="what uses this token, e.g. “CMMS”"
    )
    # Written at most once a minute per token (API_TOKEN_LAST_USED_RESOLUTION_S), not on
    # every request.
    last_used_at: "models.DateTimeField[datetime | None, datetime | None]" = models.DateTimeField(
        null=True, blank=True, editable=False
    )

    class Meta:
        verbose_name = "API token"
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.token_key}… ({self.name}, {self.user})"
