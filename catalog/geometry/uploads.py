"""Static models (STEP or STL uploads): what they are, checked from their bytes alone.

Pure and cheap, so the web process can refuse a bad upload at once: no CadQuery, no trimesh
(numpy only when a mesh drawn in another unit is scaled).
The full parse happens later, in the sandbox (catalog.geometry.build_revision), since a
file that passes these checks can still be malformed inside.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass

STEP_MAGIC = b"ISO-10303-21;"
STEP_END = b"END-ISO-10303-21;"
_STL_HEADER_BYTES = 84
_STL_TRIANGLE_BYTES = 50
_ASCII_FACET = re.compile(rb"\bfacet\s+normal\b")


class ModelInvalid(ValueError):
    """An upload that is not a usable STEP or STL file; the message says why."""


@dataclass(frozen=True)
class ModelInfo:
    format: str  # "step" or "stl"
    size: int  # bytes
    sha256: str
    triangles: int | None  # STL only


def inspect_model(content: bytes, *, max_bytes: int, max_triangles: int) -> ModelInfo:
    """Say what an uploaded model is, or raise ModelInvalid: empty, too big, truncated,
    neither STEP nor STL, or a mesh with more triangles than allowed."""
    if not content:
        raise ModelInvalid("the file is empty")
    if len(content) > max_bytes:
        raise ModelInvalid(f"the file is {_mb(len(content))}; at most {_mb(max_bytes)} is allowed")
    digest = hashlib.sha256(content).hexdigest()
    if content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(STEP_MAGIC):
        if STEP_END not in content[-4096:]:
            raise ModelInvalid("the STEP file is truncated: it does not end with END-ISO-10303-21;")
        return ModelInfo(format="step", size=len(content), sha256=digest, triangles=None)
    triangles = _stl_triangles(content)
    if triangles == 0:
        raise ModelInvalid("the STL file holds no triangles")
    if triangles > max_triangles:
        raise ModelInvalid(
            f"the mesh has {triangles:,} triangles; at most {max_triangles:,} are allowed "
            "(decimate it first)"
        )
    return ModelInfo(format="stl", size=len(content), sha256=digest, triangles=triangles)


def model_format(content: bytes) -> str:
    """ "step" or "stl" by the file's first bytes (no checks: see inspect_model)."""
    return "step" if content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(STEP_MAGIC) else "stl"


_BINARY_RECORD = [("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attributes", "<u2")]
_ASCII_VERTEX = re.compile(rb"\bvertex\s+(\S+)\s+(\S+)\s+(\S+)")


def scale_stl(content: bytes, scale: float) -> bytes:
    """The STL (binary or ASCII, checked by inspect_model) with every vertex multiplied by
    `scale`, as a binary STL: a mesh drawn in inches made millimetres (scale 25.4). Normals
    keep their direction, so they stay as they were."""
    # numpy here, not at the top: the web process imports this module and no numerical
    # library (tests/test_web_imports.py); only this request pays for it.
    import numpy as np

    count = _stl_triangles(content)
    is_binary = len(content) >= _STL_HEADER_BYTES + _STL_TRIANGLE_BYTES * count and not (
        content[:5].lower() == b"solid" and b"\0" not in content[:1024]
    )
    if is_binary:
        records = np.frombuffer(content, dtype=_BINARY_RECORD, count=count, offset=84).copy()
    else:
        corners = _ASCII_VERTEX.findall(content)
        if len(corners) != 3 * count:
            raise ModelInvalid("the ASCII STL file has facets without three vertices")
        records = np.zeros(count, dtype=_BINARY_RECORD)
        try:
            records["vertices"] = np.array(corners, dtype=np.float64).reshape(count, 3, 3)
        except ValueError:
            raise ModelInvalid("the ASCII STL file has a vertex that is not a number") from None
    records["vertices"] *= np.float32(scale)
    header = f"Microfactory: scaled x{scale:g}".encode().ljust(80, b" ")
    return header + struct.pack("<I", count) + records.tobytes()


def _stl_triangles(content: bytes) -> int:
    """The triangle count of a binary or ASCII STL, from its structure alone."""
    if len(content) >= _STL_HEADER_BYTES:
        count: int = struct.unpack_from("<I", content, 80)[0]
        expected = _STL_HEADER_BYTES + _STL_TRIANGLE_BYTES * count
        # Some writers pad the end; a binary STL is never shorter than its header says.
        if expected <= len(content) < expected + _STL_TRIANGLE_BYTES:
            return count
        is_ascii = content[:5].lower() == b"solid" and b"\0" not in content[:1024]
        if not is_ascii:
            # Part of an STL (an interrupted upload) rather than any file at all: at least a
            # twentieth of the size its header announces is there.
            if expected / 20 <= len(content) < expected:
                raise ModelInvalid(
                    f"the STL file is truncated: its header announces {count:,} triangles "
                    f"({_mb(expected)}) but the file has {_mb(len(content))}"
                )
            raise ModelInvalid("the file is neither a STEP nor an STL model")
    elif content[:5].lower() != b"solid":
        raise ModelInvalid("the file is neither a STEP nor an STL model")
    if b"endsolid" not in content[-1024:].lower():
        raise ModelInvalid("the ASCII STL file is truncated: it does not end with endsolid")
    return len(_ASCII_FACET.findall(content))


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 102_400 else f"{size:,} bytes"
