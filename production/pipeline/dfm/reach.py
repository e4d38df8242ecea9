"""Where a round tool of a given radius cannot reach, in a 2D region (shapely).

A disc of radius r moved anywhere inside a region covers its morphological opening by r
(erode by r, then dilate by r); what is left over - the region minus its opening - is what
the tool cannot reach. Each left-over piece is one of two things:

    a corner  a sliver in an inside corner sharper than r: small (area below r², its
              largest inscribed circle below 0.45 r, no longer than 2.2 r; a 90° corner
              leaves 0.21 r², 0.17 r and 1.4 r; corners sharper than about 50° read as gaps)
    a gap     a slot, hole or web narrower than 2r: the whole of it is left over (a hole
              the disc cannot enter at all is one however small); its width, where it is
              narrowest, is the largest disc that passes all along it (narrowest_gap)

Applied to the empty space around and inside a part's section it finds inside corners and
slots a cutter cannot make; applied to the material, webs and walls thinner than 2r (sharp
outside corners of the part are corners there, and ignored).

Slivers thinner than EPSILON_MM are tessellation: a fillet's arc is a polygon whose chords
leave slivers a few hundredths of a millimetre thick; `unreached` dilates back that much
more than it eroded, which covers them.
"""

import math
from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry

EPSILON_MM = 0.01
_QUAD_SEGS = 16  # segments per quarter circle of a buffer: 0.5 % of the radius off the arc
_SEARCH_STEPS = 8  # halvings when measuring the tightest corner: hi / 256


@dataclass(frozen=True)
class Piece:
    kind: str  # "gap" or "corner"
    width_mm: float  # its largest inscribed circle's diameter (narrowest_gap: the neck's)
    x: float  # its centre (the inscribed circle's)
    y: float


def unreached(region: BaseGeometry, radius: float) -> list[Piece]:
    """The pieces of `region` a disc of `radius` cannot reach, tessellation slivers left out."""
    # A hair under the radius: a tool exactly as wide as a slot (a fillet exactly its radius)
    # makes it, though the slot's tessellated ends are a hair narrower. Dilating back by the
    # full radius also covers the slivers tessellation leaves along arcs (thinner than
    # EPSILON_MM), so they never become pieces: real ones come out EPSILON_MM smaller.
    shrunk = radius - EPSILON_MM
    if shrunk > 0:
        opened = region.buffer(-shrunk, quad_segs=_QUAD_SEGS).buffer(radius, quad_segs=_QUAD_SEGS)
    else:
        opened = region
    left = shapely.get_parts(region.difference(opened))
    pieces = []
    for part in left[shapely.area(left) > EPSILON_MM * EPSILON_MM]:
        circle = shapely.maximum_inscribed_circle(part, EPSILON_MM / 2)
        centre = shapely.get_point(circle, 0)
        inscribed = float(circle.length)
        # A corner's sliver lies against where the disc did reach; a hole the disc cannot
        # enter at all is a gap, however small.
        gap = (
            inscribed >= 0.45 * radius
            or part.area > radius * radius
            or _length(part) > 2.2 * radius
            or opened.is_empty
            or part.distance(opened) > EPSILON_MM
        )
        pieces.append(
            Piece("gap" if gap else "corner", 2 * inscribed, float(centre.x), float(centre.y))
        )
    return pieces


def _length(part: BaseGeometry) -> float:
    """The longer side of the smallest rectangle around `part`."""
    low_x, low_y, high_x, high_y = (float(v) for v in part.bounds)
    if min(high_x - low_x, high_y - low_y) <= 0:
        return max(high_x - low_x, high_y - low_y)
    corners = shapely.get_coordinates(part.minimum_rotated_rectangle)
    sides = [math.dist(a, b) for a, b in zip(corners[:-1], corners[1:], strict=True)]
    return max(sides)


def tightest_corner(region: BaseGeometry, *, up_to: float, clean_at: float = 0.0) -> float:
    """The radius of the sharpest inside corner of `region` (mm), measured up to `up_to`:
    the largest radius whose disc leaves no corner unreached. `up_to` when none is tighter.
    `clean_at`: a radius already known to leave none (the search starts there)."""

    def clean(radius: float) -> bool:
        return all(piece.kind != "corner" for piece in unreached(region, radius))

    if clean(up_to):
        return up_to
    low, high = clean_at, up_to
    for _ in range(_SEARCH_STEPS):
        middle = (low + high) / 2
        if clean(middle):
            low = middle
        else:
            high = middle
    return max(low - EPSILON_MM, 0.0)  # the disc `unreached` used: a hair under `low`


def narrowest_gap(region: BaseGeometry, *, up_to: float) -> Piece | None:
    """The narrowest gap of `region` narrower than 2 x `up_to`, where it is narrowest: the
    largest disc that leaves no gap unreached is as wide as the neck. None when there is
    none; its place is a gap's that the next larger disc misses."""

    def gaps(radius: float) -> list[Piece]:
        return [piece for piece in unreached(region, radius) if piece.kind == "gap"]

    missed = gaps(up_to)
    if not missed:
        return None
    low, high = 0.0, up_to
    for _ in range(_SEARCH_STEPS):
        middle = (low + high) / 2
        found = gaps(middle)
        if found:
            high, missed = middle, found
        else:
            low = middle
    first = missed[0]
    # `unreached` opens a hair under the radius it is given: that is the disc that passed.
    return Piece("gap", 2 * max(low - EPSILON_MM, 0.0), first.x, first.y)


def corner_at(region: BaseGeometry, radius: float) -> Piece | None:
    """The first corner a disc of `radius` leaves unreached, to say where it is."""
    return next((p for p in unreached(region, radius) if p.kind == "corner"), None)


def inscribed(region: BaseGeometry) -> tuple[float, float, float]:
    """The largest circle inside `region`: its radius and centre."""
    circle = shapely.maximum_inscribed_circle(region, EPSILON_MM / 2)
    centre = shapely.get_point(circle, 0)
    return float(circle.length), float(centre.x), float(centre.y)
