"""Which unit a mesh was drawn in, when millimetres make no sense of it.

STL and OBJ files carry no unit: we read them as millimetres, as slicers do. A part drawn in
inches or metres then reads 25.4 or 1000 times too small, and every check measures it so
("thinnest wall 0.032 mm"). A mesh is suspected of another unit when, read as millimetres, it
is smaller than anything that could be made (MIN_PART_MM), or its walls are too thin to make
while the same mesh in another unit would be a part of ordinary size that fits a machine.

Which other unit: those that give an ordinary size (ORDINARY_MM), those in which the part fits
one of the machines first; among them the one in which the most of the part's extents are
round numbers (whole 1/32 inch, whole 0.5 mm in metres, whole mm in centimetres: designers draw
round sizes), inches first on a tie (the usual unit of files not in millimetres). The guess is
offered, never applied: the uploader accepts the scale (orders.uploads.upload_rescale), and the
scaled mesh is checked anew, every threshold (hole filling included) in millimetres.

STEP files say their unit and OpenCascade converts them to millimetres: no guess is needed.
"""

from collections.abc import Sequence
from dataclasses import dataclass

MIN_PART_MM = 2.0  # read as millimetres, a part smaller than this is surely another unit
ORDINARY_MM = (5.0, 2000.0)  # the largest extent of a spare part, in any unit

# name, millimetres per unit, the step a designer's round numbers fall on (in that unit)
UNITS = (
    ("inch", 25.4, 1 / 32),
    ("m", 1000.0, 0.0005),
    ("cm", 10.0, 0.1),
)
_ROUND_TOLERANCE = 0.02  # of a step


@dataclass(frozen=True)
class UnitGuess:
    unit: str  # "inch", "m" or "cm"
    scale: float  # millimetres per file unit: multiply the mesh by this
    extents_mm: tuple[float, float, float]  # the part's size once scaled
    reason: str  # "smaller than 2 mm" or "walls too thin"


def guess_unit(
    extents: Sequence[float],
    *,
    walls_too_thin: bool,
    build_volumes_mm: Sequence[tuple[float, float, float]],
) -> UnitGuess | None:
    """The likely unit of a mesh whose `extents` (file units, read as mm) make no sense in
    millimetres, or None when they do. `walls_too_thin`: read as mm, a wall cannot be made."""
    largest = max(extents)
    if largest >= MIN_PART_MM and not walls_too_thin:
        return None
    reason = f"smaller than {MIN_PART_MM:g} mm" if largest < MIN_PART_MM else "walls too thin"
    best: tuple[bool, int, int, UnitGuess] | None = None
    for preference, (unit, scale, step) in enumerate(UNITS):
        scaled = tuple(round(e * scale, 2) for e in extents)
        if not ORDINARY_MM[0] <= max(scaled) <= ORDINARY_MM[1]:
            continue
        fits = _fits_any(scaled, build_volumes_mm)
        # Walls too thin in mm, yet the part is large enough to make: only a unit in which it
        # fits some machine explains it (a large part with thin fins is just thin).
        if largest >= MIN_PART_MM and not fits:
            continue
        round_sizes = sum(_is_round(e, step) for e in extents)
        guess = UnitGuess(unit, scale, (scaled[0], scaled[1], scaled[2]), reason)
        if best is None or (fits, round_sizes, -preference) > best[:3]:
            best = (fits, round_sizes, -preference, guess)
    return None if best is None else best[3]


def _is_round(value: float, step: float) -> bool:
    steps = value / step
    return abs(steps - round(steps)) <= _ROUND_TOLERANCE and round(steps) > 0


def _fits_any(
    extents: Sequence[float], build_volumes_mm: Sequence[tuple[float, float, float]]
) -> bool:
    size = sorted(extents)
    return any(
        all(s <= b for s, b in zip(size, sorted(volume), strict=True))
        for volume in build_volumes_mm
    )
