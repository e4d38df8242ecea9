from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Who may sign in how: API tokens (hashed, django-rest-knox) and two-factor
    authentication (TOTP, django-otp) for staff and catalog admins."""

    name = "microfactory.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from microfactory.accounts import schema  # noqa: F401  (the OpenAPI security scheme)
