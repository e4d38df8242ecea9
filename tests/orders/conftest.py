import pytest


@pytest.fixture(autouse=True)
def _plain_static_files(settings):
    """Pages render {% static %} without a collectstatic manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
