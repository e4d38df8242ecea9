from unittest.mock import patch

import pytest


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Pages render {% static %} without a collectstatic manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def no_broker():
    """No message leaves: the jobs, previews, webhooks and mails an order sends are not run."""
    with (
        patch("production.tasks.advance_job.apply_async"),
        patch("catalog.tasks.build_preview.apply_async"),
        patch("orders.tasks.deliver_webhook.apply_async"),
        patch("orders.tasks.email_requester.apply_async"),
    ):
        yield
