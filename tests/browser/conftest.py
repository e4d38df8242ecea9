"""A real headless Chromium, driven by Playwright, against pytest-django's live server.

Debian's Chromium is used as it is (executable_path): `playwright install` is never needed.
The Redis and Celery worker fixtures are the integration tests' own.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections

from tests.integration.conftest import broker, redis_url, start_worker  # noqa: F401 (fixtures)

CHROMIUM = os.environ.get("MF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    # WebGL for the 3D viewer without a GPU: SwiftShader, Chromium's software renderer.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
VENDOR = Path(__file__).resolve().parents[2] / "microfactory" / "static" / "vendor"
# Every document reports what its Content-Security-Policy blocked to the console, where the
# fixture collects it with Chromium's own "Refused to ..." messages.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(
    `CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline code"}` +
      ` at ${event.sourceFile}:${event.lineNumber} on ${document.location.href}`,
  );
});
"""


def csp_violation(text: str) -> bool:
    return text.startswith(("CSP violation", "Refused to")) or "Content Security Policy" in text


def _chromium(settings, monkeypatch, **context_options: object) -> Iterator[object]:
    """A fresh browser page in a context made with `context_options`; the pages' static files
    served without a manifest.

    Every test that uses it also fails if a page's Content-Security-Policy blocked anything
    (page.csp_violations lists them as they come)."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/install-system-packages.sh installs it)")
    assert (VENDOR / "three" / "build" / "three.module.js").exists(), (
        "three.js is not in microfactory/static/vendor: run `make install` "
        "(scripts/build-assets.sh)"
    )
    from playwright.sync_api import sync_playwright

    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Playwright's sync API runs an event loop in this thread; the test's own ORM reads are
    # plain synchronous calls all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(**context_options)
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        page = context.new_page()
        page.set_default_timeout(30_000)
        violations: list[str] = []

        def collect(message) -> None:
            if csp_violation(message.text):
                violations.append(message.text)

        page.on("console", collect)
        page.csp_violations = violations
        try:
            yield page
        finally:
            # While Playwright's loop runs in this thread, Django keeps the ORM's connections
            # per asyncio context, not per thread: the test's calls meanwhile opened their own,
            # which the test databases' teardown would find still open. Closed here.
            connections.close_all()
            context.close()
            browser.close()
        assert violations == [], "the Content-Security-Policy blocked:\n" + "\n".join(violations)


@pytest.fixture
def chromium_page(settings, monkeypatch) -> Iterator[object]:
    """A desktop-sized page (1280 x 900)."""
    yield from _chromium(settings, monkeypatch, viewport={"width": 1280, "height": 900})


# A 6.1-inch phone held upright (iPhone 12 to 15): 390 x 844 CSS pixels, 3 device pixels each,
# a touch screen, the page's <meta name=viewport> honoured as a phone's browser does.
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}


@pytest.fixture
def phone_page(settings, monkeypatch) -> Iterator[object]:
    """A phone-sized page (PHONE)."""
    yield from _chromium(settings, monkeypatch, **PHONE)
