"""manage.py mfa_reset USER: remove the user's second-factor devices (a lost phone).

Their sessions lose the second factor at once; at the next login a user who must use MFA
(staff, catalog admins) enrols a new device."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from microfactory.accounts import services


class Command(BaseCommand):
    help = "Remove a user's two-factor (TOTP) devices so they enrol again at their next login."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model()._default_manager.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        removed = services.mfa_reset(user=user)
        self.stdout.write(
            f"removed {removed} device(s) of {user.get_username()}: "
            "they set up a new one at their next login"
        )
