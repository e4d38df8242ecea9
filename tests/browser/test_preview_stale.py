"""The part page's 3D preview never shows a model the form no longer describes: invalid
parameters clear it (with a note saying why), a valid change whose preview is still being
built dims it and marks it stale, and the valid configuration brings its model back."""

import pytest

from catalog.parameters import defaults, parse_schema
from catalog.previews import preview_build, preview_request
from tests.builders import make_machine, make_part, make_user

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(300)]

# Pixels of the viewer's canvas that differ from its background: the model on screen.
MODEL_PIXELS = """() => {
  const source = document.querySelector('#viewer canvas');
  const copy = document.createElement('canvas');
  copy.width = source.width; copy.height = source.height;
  const context = copy.getContext('2d');
  context.drawImage(source, 0, 0);
  const pixels = context.getImageData(0, 0, copy.width, copy.height).data;
  let model = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const [r, g, b] = [pixels[i], pixels[i + 1], pixels[i + 2]];
    if (Math.abs(r - 0xf3) + Math.abs(g - 0xf5) + Math.abs(b - 0xf8) > 24) model++;
  }
  return model;
}"""


@pytest.mark.django_db(transaction=True)
def test_invalid_parameters_clear_the_preview_and_a_pending_one_is_marked_stale(
    live_server, broker, chromium_page
) -> None:
    make_user("requester")
    revision = make_part("block")
    make_machine()
    values = defaults(parse_schema(revision.parameter_schema))
    preview, _ = preview_request(revision=revision, parameters=values, user=None)
    assert preview_build(preview_id=preview.pk) == "ready"
    page = chromium_page
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "requester")
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(f"{live_server.url}/parts/block/")
    page.wait_for_selector("#viewer[data-state=shown]", timeout=60_000)
    model_url = page.get_attribute("#viewer", "data-url")
    page.wait_for_function(f"({MODEL_PIXELS})() > 500")
    assert not page.is_visible("#viewer-note")

    # Invalid: the previous model leaves the screen, and the note says why.
    page.fill("#p_width", "2")
    page.wait_for_selector("#viewer[data-state=invalid]")
    page.wait_for_selector("#config-state[data-state=invalid]", state="attached")
    assert page.get_attribute("#viewer", "data-url") is None
    page.wait_for_function(f"({MODEL_PIXELS})() === 0")
    assert page.inner_text("#viewer-note") == "No preview: fix the parameters first."
    assert "Width must be at least 5 mm (got 2 mm)" in page.inner_text("#config-errors")

    # Valid again, the very configuration that was built: its model comes back as it was.
    page.fill("#p_width", "20")
    page.wait_for_selector("#viewer[data-state=shown]", timeout=60_000)
    assert page.get_attribute("#viewer", "data-url") == model_url
    page.wait_for_function(f"({MODEL_PIXELS})() > 500")
    assert not page.is_visible("#viewer-note")

    # Valid, but not built yet (no worker here): the old model stays dimmed, marked stale.
    page.fill("#p_width", "30")
    page.wait_for_selector("#preview-state[data-status=queued]", state="attached")
    page.wait_for_selector("#viewer[data-state=stale]")
    assert page.inner_text("#viewer-note") == "Building the preview of these values…"
    assert page.get_attribute("#viewer", "data-url") == model_url
    assert page.csp_violations == []
