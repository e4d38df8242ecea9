from django.apps import AppConfig


class ProductionConfig(AppConfig):
    name = "production"

    def ready(self) -> None:
        from production import (
            checks,  # noqa: F401  (registers the deploy check)
            passport,
        )

        # Refuse to start with a passport key that is unreadable or not an Ed25519 key,
        # rather than fail the first step that signs.
        passport.signing_key()
