"""Reading an uploaded STEP file into an STL, in the same sandbox as part scripts.

STEP parsing is OpenCascade's, and OpenCascade on hostile input can crash, hang or eat
memory, so it runs exactly like a part script: in the sandboxed child, under the same
limits. The file travels in as the value of a string parameter; the child writes it to
its working directory, imports it and exports the STL like any other build.
"""

from microfactory.errors import Rejected

from .build import build_geometry
from .sandbox import BuildLimits

# cqgi turns the top-level `step_text = ""` into a string parameter the build replaces.
# latin-1 maps every byte to one character and back, so the file arrives byte for byte.
_IMPORT_SCRIPT = """\
import cadquery as cq

step_text = ""

with open("upload.step", "w", encoding="latin-1", newline="") as upload:
    upload.write(step_text)
show_object(cq.importers.importStep("upload.step"))
"""


def step_to_stl(step: bytes, *, limits: BuildLimits) -> bytes:
    """Binary STL (mm) tessellated from STEP bytes with the limits' tolerances.

    Raises Rejected when the file is not a STEP file OpenCascade can read or holds no
    solid, BuildFailed when the conversion hits a sandbox limit.
    """
    if not step.lstrip()[:13].startswith(b"ISO-10303-21"):
        raise Rejected("the file does not start with ISO-10303-21; it is not a STEP file")
    try:
        built = build_geometry(_IMPORT_SCRIPT, {"step_text": step.decode("latin-1")}, limits=limits)
    except Rejected as refusal:
        reason = str(refusal)
        if "STEP File could not be loaded" in reason:
            reason = "OpenCascade could not parse it"
        elif "no solid" in reason:
            reason = "it holds no closed solid (only surfaces, wires or nothing)"
        raise Rejected(reason) from None
    return built.stl
