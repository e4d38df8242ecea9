"""Show the passport signing key's public half, or make a new key file.

manage.py passport_key               the public key passports are signed with (hex)
manage.py passport_key --new PATH    write a new private key to PATH (0600), print its
                                     public key; then point MF_PASSPORT_KEY_FILE at it
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from production import passport


class Command(BaseCommand):
    help = "Show the passport signing key's public key, or write a new key file (--new PATH)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--new", metavar="PATH", help="write a new Ed25519 key to PATH")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["new"]:
            path = Path(options["new"])
            try:
                self.stdout.write(passport.write_new_key(path))
            except FileExistsError:
                raise CommandError(f"{path} exists: a key is never overwritten") from None
            return
        self.stdout.write(passport.signing_key().public_hex)
