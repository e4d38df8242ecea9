from django.apps import AppConfig
from django.conf import settings


class ProductionConfig(AppConfig):
    name = "production"

    def ready(self) -> None:
        from production import (
            checks,  # noqa: F401  (registers the deploy check)
            passport,
        )

        # Refuse to start with a configured key that is unreadable or not an Ed25519 key,
        # rather than fail the first step that signs. A key generated under var/ is made on
        # first use instead: a command such as collectstatic in an image build makes none.
        if not settings.PASSPORT_KEY_GENERATED:
            passport.signing_key()
