"""Deployment checks of production's settings (`manage.py check --deploy`)."""

from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Tags, register
from django.core.checks import Warning as CheckWarning


@register(Tags.security, deploy=True)
def passport_key_configured(
    *, app_configs: Sequence[AppConfig] | None, databases: Sequence[str] | None, **kwargs: Any
) -> Iterable[CheckMessage]:
    if not settings.PASSPORT_KEY_GENERATED:
        return []
    return [
        CheckWarning(
            f"passports are signed with a key generated into {settings.PASSPORT_KEY_FILE}",
            hint="Every web and worker process must sign with the same key, kept apart from "
            "the database: set MF_PASSPORT_KEY_FILE to a key made with `manage.py passport_key "
            '--new PATH` (docs/operations.md, "Passport signing key").',
            id="production.W001",
        )
    ]
