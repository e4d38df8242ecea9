"""Part drawings (SVG) cleaned to an allow-list before anything stores or serves them.

A drawing comes out of the sandbox, where a catalog script ran: the script can replace
CadQuery's SVG exporter or overwrite the file, so the drawing is as untrusted as the script.
An SVG opened on our origin runs its scripts with the viewer's session, so only line-drawing
elements and presentational attributes survive, with references to nothing but fragments of
the drawing itself.

Parsed as XML (the way browsers read image/svg+xml), not as HTML: an HTML sanitiser such as
nh3 reads the document differently than the browser that renders it (CDATA, entities) and
writes HTML entities (&nbsp;) that are not well-formed XML. A DOCTYPE (and so any entity) is
refused outright by defusedxml.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"

# Line drawings and their labels. No script, style, foreignObject, a, image, animate/set
# (which can rewrite an href), filter, or anything else that loads, links or runs.
ELEMENTS = frozenset(
    {
        "svg",
        "g",
        "defs",
        "use",
        "path",
        "line",
        "polyline",
        "polygon",
        "rect",
        "circle",
        "ellipse",
        "text",
        "tspan",
        "title",
        "desc",
    }
)
# Geometry and presentation. No style (CSS can load urls), no on* handlers, no class.
ATTRIBUTES = frozenset(
    {
        "id",
        "version",
        "width",
        "height",
        "viewBox",
        "preserveAspectRatio",
        "transform",
        "x",
        "y",
        "x1",
        "y1",
        "x2",
        "y2",
        "cx",
        "cy",
        "r",
        "rx",
        "ry",
        "dx",
        "dy",
        "d",
        "points",
        "fill",
        "fill-opacity",
        "fill-rule",
        "stroke",
        "stroke-width",
        "stroke-dasharray",
        "stroke-dashoffset",
        "stroke-linecap",
        "stroke-linejoin",
        "stroke-miterlimit",
        "stroke-opacity",
        "opacity",
        "color",
        "display",
        "visibility",
        "vector-effect",
        "shape-rendering",
        "font-family",
        "font-size",
        "font-style",
        "font-weight",
        "text-anchor",
        "dominant-baseline",
    }
)
# Paint servers may point into the drawing ("url(#hatch)"), never at another document.
_URL = re.compile(r"url\s*\(", re.IGNORECASE)
_LOCAL_URL = re.compile(r"""url\s*\(\s*(['"]?)#[\w.:-]+\1\s*\)""", re.IGNORECASE)
_FRAGMENT = re.compile(r"#[\w.:-]+")
MAX_DEPTH = 64  # CadQuery's drawings nest 3 deep; deeper is an attack on the recursion


class DrawingInvalid(ValueError):
    """Not an SVG drawing we can clean: not XML, a DOCTYPE or entity, or no <svg> root."""


def drawing_clean(svg: str) -> str:
    """The drawing with only allow-listed elements and attributes, as a standalone SVG
    document (no XML declaration; the SVG namespace as the default one). Raises
    DrawingInvalid. Cleaning a cleaned drawing gives it back unchanged."""
    try:
        root = fromstring(svg, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as refused:
        raise DrawingInvalid(f"the drawing declares a DTD or entities ({refused!r})") from None
    except ElementTree.ParseError as error:
        raise DrawingInvalid(f"the drawing is not well-formed XML: {error}") from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise DrawingInvalid(f"the drawing's root is {root.tag!r}, not an SVG <svg> element")
    clean = _clean(root, depth=0)
    # Written with bare names under one default namespace declaration (ElementTree's own
    # default_namespace option refuses unprefixed attributes).
    clean.set("xmlns", SVG_NS)
    return ElementTree.tostring(clean, encoding="unicode")


def _clean(element: ElementTree.Element, *, depth: int) -> ElementTree.Element:
    """A copy of an allowed element with its allowed attributes and allowed children."""
    if depth > MAX_DEPTH:
        raise DrawingInvalid(f"the drawing nests elements more than {MAX_DEPTH} deep")
    kept = ElementTree.Element(element.tag.removeprefix(f"{{{SVG_NS}}}"))
    for name, value in element.attrib.items():
        attribute = _attribute(element.tag, name, value)
        if attribute is not None:
            kept.set(*attribute)
    kept.text = element.text
    for child in element:
        if _allowed(child.tag):
            cleaned = _clean(child, depth=depth + 1)
            cleaned.tail = child.tail
            kept.append(cleaned)
    return kept


def _allowed(tag: object) -> bool:
    """An allowed SVG element (comments and processing instructions are not parsed at all)."""
    if not isinstance(tag, str) or not tag.startswith(f"{{{SVG_NS}}}"):
        return False
    return tag.removeprefix(f"{{{SVG_NS}}}") in ELEMENTS


def _attribute(tag: str, name: str, value: str) -> tuple[str, str] | None:
    """The attribute as kept, or None. References: only <use> may point, only at a fragment
    of this drawing, and always as the plain SVG 2 `href`."""
    if name in ("href", f"{{{XLINK_NS}}}href"):
        if tag == f"{{{SVG_NS}}}use" and _FRAGMENT.fullmatch(value.strip()):
            return "href", value.strip()
        return None
    if name not in ATTRIBUTES:  # namespaced ({...}name), on*, style, class...
        return None
    if _URL.search(value) and not _only_local_urls(value):
        return None
    return name, value


def _only_local_urls(value: str) -> bool:
    """Every url(...) in the value points at a fragment of this drawing."""
    return len(_URL.findall(value)) == len(_LOCAL_URL.findall(value))
