"""Issue a machine's telemetry token: `manage.py machine_token SLUG` prints it once."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from production.machines import machine_token_issue
from production.models import Machine


class Command(BaseCommand):
    help = "Issue a new telemetry token for a machine (the old one stops working) and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="the machine's slug")

    def handle(self, *args: Any, **options: Any) -> None:
        machine = Machine.objects.filter(slug=options["slug"]).first()
        if machine is None:
            raise CommandError(f"no machine {options['slug']!r}")
        token = machine_token_issue(machine=machine)
        self.stderr.write(
            f"Telemetry token for {machine.name}; it is shown only this once, keep it in the "
            f"machine's agent:"
        )
        self.stdout.write(token)
