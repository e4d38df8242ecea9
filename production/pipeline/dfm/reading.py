"""From untrusted STL bytes to an (n, 3, 3) array of triangles, or a clear refusal.

We parse STL ourselves rather than through trimesh so that every hostile input has a known
cost and a message a person can act on: a header that claims more triangles than the file
holds, binary garbage, ASCII with words where numbers belong, NaN coordinates. The file size
and triangle count are checked before anything is allocated for them.
"""

import io
import re

import numpy as np

from .checks import FAIL, PASS, Check, Refused

_HEADER_BYTES = 80
_TRIANGLE_BYTES = 50  # normal (3 x f4), three vertices (9 x f4), attribute (u2)
_BINARY = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])
# Anything farther out than a kilometre is a unit mix-up or garbage, and would overflow the
# integer grid that welds vertices.
MAX_COORDINATE_MM = 1e6
_ASCII_KEYWORDS = (b"facet normal", b"outer loop", b"endloop", b"vertex")
# "solid name" and "endsolid name" up to the end of the line or the next facet (some writers
# put a whole file on one line; some files hold several solids).
_SOLID_LINE = re.compile(rb"(?m)\b(end)?solid\b.*?(?=facet normal|$)")


def read_stl(
    data: bytes, *, max_file_bytes: int, max_triangles: int
) -> tuple[np.ndarray, list[Check]]:
    """The file's triangles in millimetres (float64) and the checks that passed on the way.

    Raises Refused carrying the failed check: file_size, readable, triangles or coordinates.
    """
    checks = [file_size_check(len(data), max_file_bytes)]
    if is_binary_stl(data):
        claimed = int.from_bytes(data[_HEADER_BYTES:84], "little")
        checks.append(_triangle_check(claimed, max_triangles))
        records = np.frombuffer(data, dtype=_BINARY, count=claimed, offset=84)
        triangles = records["vertices"].astype(np.float64)
        kind = "binary STL"
    elif data.lstrip()[:5].lower() == b"solid":
        facets = _ascii_facet_count(data)
        checks.append(_triangle_check(facets, max_triangles))
        triangles = _read_ascii(data, facets)
        kind = "ASCII STL"
    else:
        raise Refused(_unreadable(_what_is_wrong(data)))
    checks.insert(1, Check("readable", PASS, kind, "STL or STEP", f"read as {kind}"))
    if len(triangles) == 0:
        raise Refused(_unreadable("the STL file contains no triangles"))
    checks.append(coordinates_check(triangles))
    return triangles, checks


def file_size_check(size: int, max_file_bytes: int) -> Check:
    value, limit = _megabytes(size), _megabytes(max_file_bytes)
    if size > max_file_bytes:
        raise Refused(
            Check(
                "file_size", FAIL, value, f"≤ {limit}",
                f"the file is {value}; files up to {limit} are accepted: export it with a "
                "coarser tessellation",
            )
        )  # fmt: skip
    return Check("file_size", PASS, value, f"≤ {limit}", f"the file is {value}")


def coordinates_check(triangles: np.ndarray) -> Check:
    if not np.isfinite(triangles).all():  # per triangle only when something is wrong
        finite = np.isfinite(triangles).all(axis=(1, 2))
        bad = int((~finite).sum())
        raise Refused(
            Check(
                "coordinates", FAIL, f"{bad} triangle(s) with NaN or infinite coordinates",
                "finite numbers",
                "the mesh has coordinates that are not numbers (NaN or infinite): "
                "export it again from the CAD program",
            )
        )  # fmt: skip
    farthest = float(np.abs(triangles).max())
    if farthest > MAX_COORDINATE_MM:
        raise Refused(
            Check(
                "coordinates", FAIL, f"{farthest:.3g} mm from the origin",
                f"≤ {MAX_COORDINATE_MM:g} mm",
                "the mesh has points more than a kilometre from the origin: check the file's "
                "units (we read STL as millimetres)",
            )
        )  # fmt: skip
    return Check("coordinates", PASS, "finite", "finite numbers", "every coordinate is a number")


def is_binary_stl(data: bytes) -> bool:
    """A binary STL's size is exactly header + count + 50 bytes per triangle it announces.

    Some binary files start with "solid" too; an ASCII file whose size happens to match
    still ends in "endsolid", which a binary file's last bytes almost never spell.
    """
    if len(data) < 84:
        return False
    claimed = int.from_bytes(data[_HEADER_BYTES:84], "little")
    if len(data) != 84 + _TRIANGLE_BYTES * claimed:
        return False
    return not (data[:5].lower() == b"solid" and b"endsolid" in data[-256:].lower())


def _what_is_wrong(data: bytes) -> str:
    if not data.strip():
        return "the file is empty"
    if len(data) >= 84:
        claimed = int.from_bytes(data[_HEADER_BYTES:84], "little")
        held = (len(data) - 84) // _TRIANGLE_BYTES
        if claimed > held:
            return (
                f"the STL header claims {claimed} triangles but the file holds only {held}: "
                "it is truncated or not an STL"
            )
        if claimed < held and (len(data) - 84) % _TRIANGLE_BYTES == 0:
            return f"the STL header claims {claimed} triangles but the file holds {held}"
    return "the file is neither a binary nor an ASCII STL"


def _ascii_facet_count(data: bytes) -> int:
    try:
        data.decode("ascii")
    except UnicodeDecodeError:
        raise Refused(
            _unreadable("the file starts like an ASCII STL but holds binary bytes")
        ) from None
    return data.lower().count(b"endfacet")


def _read_ascii(data: bytes, facets: int) -> np.ndarray:
    """Each facet becomes one row of 12 numbers (normal, three vertices), read by numpy's
    C parser: no Python object per number, so memory stays a small multiple of the file."""
    text = _SOLID_LINE.sub(b" ", data.lower())
    counts = {keyword: text.count(keyword) for keyword in _ASCII_KEYWORDS}
    if (
        facets == 0
        or counts[b"vertex"] != 3 * facets
        or any(counts[keyword] != facets for keyword in _ASCII_KEYWORDS if keyword != b"vertex")
    ):
        raise Refused(
            _unreadable(
                f"the ASCII STL is malformed: {facets} facet end(s), "
                f"{counts[b'facet normal']} facet start(s), {counts[b'vertex']} vertices"
            )
        )
    text = text.replace(b"\r", b" ").replace(b"\n", b" ")
    for keyword in _ASCII_KEYWORDS:
        text = text.replace(keyword, b" ")
    text = text.replace(b"endfacet", b"\n")
    try:
        rows = np.loadtxt(io.BytesIO(text), dtype=np.float64, ndmin=2, comments=None)
    except ValueError as error:
        raise Refused(
            _unreadable(f"the ASCII STL has a bad number: {_loadtxt_reason(error)}")
        ) from None
    if rows.shape != (facets, 12):
        raise Refused(
            _unreadable("the ASCII STL is malformed: a facet has the wrong number of values")
        )
    return rows[:, 3:].reshape(-1, 3, 3)


def _loadtxt_reason(error: ValueError) -> str:
    """numpy's 'could not convert string 'x' to float64 at row 0, column 2.' as facet and word."""
    message = str(error)
    found = re.search(r"string '(.*?)' to float64 at row (\d+), column (\d+)", message)
    if found:
        word, row, column = found.group(1), int(found.group(2)), int(found.group(3))
        where = "normal" if column <= 3 else f"vertex {(column - 4) // 3 + 1}"
        return f"'{word[:40]}' in facet {row + 1} ({where}) is not a number"
    if "number of columns" in message:
        counted = re.search(r"row (\d+)", message)
        facet = counted.group(1) if counted else "?"  # numpy counts these rows from 1
        return f"facet {facet} does not have 3 vertices of 3 numbers"
    return message[:200]


def _triangle_check(count: int, max_triangles: int) -> Check:
    if count > max_triangles:
        raise Refused(
            Check(
                "triangles", FAIL, str(count), f"≤ {max_triangles}",
                f"the mesh has {count} triangles; up to {max_triangles} are accepted: "
                "export it with a coarser tessellation",
            )
        )  # fmt: skip
    return Check("triangles", PASS, str(count), f"≤ {max_triangles}", f"{count} triangles")


def _unreadable(reason: str) -> Check:
    return Check("readable", FAIL, "unreadable", "STL or STEP", reason)


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.1f} kB"
