"""manage.py api_token_create USER [--name NAME] [--expires-days N]: a new API token for USER,
printed alone on stdout (shown this once; only its hash is kept)."""

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from microfactory.accounts import services


class Command(BaseCommand):
    help = "Create an API token for a user and print it (it is shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what will use the token")
        parser.add_argument(
            "--expires-days", type=int, default=None, help="lifetime in days (default: never)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model()._default_manager.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        days = options["expires_days"]
        if days is not None and days <= 0:
            raise CommandError("--expires-days must be a positive number of days")
        try:
            _, secret = services.api_token_create(
                user=user,
                name=options["name"],
                expires_in=timedelta(days=days) if days else None,
            )
        except services.TokenRefused as refused:
            raise CommandError(str(refused)) from None
        self.stdout.write(secret)
