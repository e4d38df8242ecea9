from django.apps import AppConfig
from django.conf import settings


class ProductionConfig(AppConfig):
    name = "production"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from production import (
            checks,  # noqa: F401  (registers the deploy check)
            passport,
        )
        from production.templatetags.floor_nav import remember_at_login

        # The navigation's Floor link, decided once per login (templatetags/floor_nav.py).
        user_logged_in.connect(remember_at_login, dispatch_uid="production.floor_nav")

        # Refuse to start with a configured key that is unreadable or not an Ed25519 key,
        # rather than fail the first step that signs. A key generated under var/ is made on
        # first use instead: a command such as collectstatic in an image build makes none.
        if not settings.PASSPORT_KEY_GENERATED:
            passport.signing_key()
