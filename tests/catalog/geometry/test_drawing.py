"""drawing_clean: a drawing from the sandbox keeps its lines and loses anything that runs,
loads or links. Pure: no CadQuery, no database."""

from xml.etree import ElementTree

import pytest

from catalog.geometry import DrawingInvalid, ModelInvalid, drawing_clean, inspect_model

SVG = "{http://www.w3.org/2000/svg}"

# CadQuery's own drawing (getSVG's template: XML declaration, two namespace declarations,
# comments), with everything a hostile script could add to it.
HOSTILE = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<svg xmlns:svg="http://www.w3.org/2000/svg" xmlns="http://www.w3.org/2000/svg"
     xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:h="http://www.w3.org/1999/xhtml"
     width="600" height="450" onload="alert('svg onload')">
  <script>alert('script')</script>
  <script xlink:href="https://evil.example/x.js"/>
  <style>path { fill: url(https://evil.example/track.png) }</style>
  <h:script>alert('xhtml script')</h:script>
  <!-- hidden lines -->
  <g transform="scale(1, -1) translate(10,20)" stroke-width="0.7" fill="none"
     onclick="alert('click')" style="background:url(https://evil.example/bg.png)">
    <g stroke="rgb(170,170,170)" fill="none" stroke-dasharray="0.7,0.7">
      <path d="M0 0 L10 10" />
    </g>
    <g stroke="rgb(20,20,20)" fill="url(https://evil.example/paint.svg#p)">
      <path id="edge" d="M10 10 L20 0" onmouseover="alert('hover')" />
      <polyline points="0,0 5,5 10,0" />
    </g>
    <foreignObject width="100" height="100">
      <h:iframe src="javascript:alert('iframe')"/>
    </foreignObject>
    <a href="javascript:alert('link')"><text x="1" y="2">click me</text></a>
    <a xlink:href="https://evil.example/"><rect width="5" height="5"/></a>
    <use href="#edge" stroke="url(#edge)"/>
    <use xlink:href="#edge"/>
    <use href="https://evil.example/sprites.svg#icon"/>
    <use xlink:href="javascript:alert('use')"/>
    <image href="https://evil.example/pixel.png" width="1" height="1"/>
    <animate attributeName="href" to="javascript:alert('animate')"/>
    <set attributeName="onclick" to="alert('set')"/>
    <text x="80" y="-30" font-size="4">X <tspan dx="1">Ø 25</tspan> a\u00a0b</text>
  </g>
</svg>
"""

GONE = (
    *"script onload onclick onmouseover style foreignobject iframe javascript:".split(),
    *"evil.example <image <animate <set xlink <!-- <?xml".split(),
    "<a ",
)


def test_a_hostile_drawing_keeps_its_lines_and_loses_everything_that_runs_or_loads() -> None:
    clean = drawing_clean(HOSTILE)

    lowered = clean.lower()
    for gone in GONE:
        assert gone not in lowered, gone
    root = ElementTree.fromstring(clean)  # still well-formed XML, an SVG document
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height")) == ("600", "450")
    paths = root.findall(f".//{SVG}path")
    assert [path.get("d") for path in paths] == ["M0 0 L10 10", "M10 10 L20 0"]
    assert root.find(f".//{SVG}polyline").get("points") == "0,0 5,5 10,0"
    outer = root.find(f"{SVG}g")
    assert outer.get("transform") == "scale(1, -1) translate(10,20)"
    assert outer.get("stroke-width") == "0.7"
    painted = root.findall(f"{SVG}g/{SVG}g")[1]
    assert painted.get("stroke") == "rgb(20,20,20)"
    assert painted.get("fill") is None  # a paint server in another document
    # <use> keeps its fragment references (as SVG 2's plain href), loses the others.
    uses = root.findall(f".//{SVG}use")
    assert [use.get("href") for use in uses] == ["#edge", "#edge", None, None]
    assert uses[0].get("stroke") == "url(#edge)"
    text = root.find(f".//{SVG}text")
    assert "".join(text.itertext()) == "X Ø 25 a\u00a0b"


def test_cleaning_a_clean_drawing_changes_nothing() -> None:
    clean = drawing_clean(HOSTILE)

    assert drawing_clean(clean) == clean


@pytest.mark.parametrize(
    "drawing, reason",
    [
        # Entities, internal or external, are refused with the DOCTYPE that declares them.
        (
            '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x "boom">]>'
            '<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
            "DTD",
        ),
        (
            '<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
            "DTD",
        ),
        (
            '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
            '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg/>',
            "DTD",
        ),
        ("<svg xmlns='http://www.w3.org/2000/svg'><path d='M0 0'></svg>", "well-formed"),
        ("not a drawing", "well-formed"),
        ("<svg><path d='M0 0'/></svg>", "not an SVG"),  # no namespace: not an SVG document
        ("<html xmlns='http://www.w3.org/1999/xhtml'><script/></html>", "not an SVG"),
        (
            "<svg xmlns='http://www.w3.org/2000/svg'>" + "<g>" * 200 + "</g>" * 200 + "</svg>",
            "deep",
        ),
    ],
)
def test_drawings_that_cannot_be_cleaned_are_refused_with_the_reason(drawing, reason) -> None:
    with pytest.raises(DrawingInvalid, match=reason):
        drawing_clean(drawing)


def test_an_svg_uploaded_as_a_static_model_is_refused() -> None:
    svg = HOSTILE.encode() * 4  # big enough to be taken for a binary STL's header, too
    for upload in (svg, svg[:60]):
        with pytest.raises(ModelInvalid):
            inspect_model(upload, max_bytes=10**6, max_triangles=10**6)
