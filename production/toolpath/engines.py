"""The slicers a machine may choose (Machine.toolpath_engine), behind one call.

    "builtin"      our FDM slicer (planner.py): pure Python, in this process
    "prusaslicer"  the PrusaSlicer CLI (prusaslicer.py), where it is installed

Both take the same STL and FdmProfile, centre the part on the bed (or leave an arranged
plate's copies where they were placed), and return the same Toolpath; verify.py checks
either's G-code against the part or the plate.
"""

from production.toolpath import planner, prusaslicer
from production.toolpath.planner import Toolpath
from production.toolpath.profile import FdmProfile
from production.toolpath.prusaslicer import ToolpathEngineError

BUILTIN = "builtin"
PRUSASLICER = "prusaslicer"
ENGINES = (BUILTIN, PRUSASLICER)

__all__ = ["BUILTIN", "ENGINES", "PRUSASLICER", "ToolpathEngineError", "engine_version", "plan"]


def plan(
    stl: bytes,
    profile: FdmProfile,
    *,
    engine: str,
    timeout_s: float,
    prusaslicer_binary: str = "prusa-slicer",
    arranged: bool = False,
) -> Toolpath:
    """Slice with the named engine. Deterministic per engine version: a second call repeats it.

    An `arranged` STL is a plate, its copies placed in bed coordinates: sliced where they
    stand, not centred. `timeout_s` bounds an external slicer; the builtin one runs in this
    process, bounded only by the task's time limit. Raises Rejected for an unprintable mesh,
    ToolpathEngineError when the engine itself fails.
    """
    if engine == BUILTIN:
        return planner.plan_toolpath(stl, profile, arranged=arranged)
    if engine == PRUSASLICER:
        return prusaslicer.plan_toolpath(
            stl, profile, binary=prusaslicer_binary, timeout_s=timeout_s, arranged=arranged
        )
    raise ValueError(f"unknown toolpath engine {engine!r}; expected one of {ENGINES}")


def engine_version(engine: str, *, prusaslicer_binary: str = "prusa-slicer") -> str:
    """Everything besides the profile that decides an engine's G-code, for cache keys.

    Raises ToolpathEngineError when an external engine is missing or does not answer.
    """
    if engine == BUILTIN:
        return planner.ENGINE
    if engine == PRUSASLICER:
        return prusaslicer.cache_version(prusaslicer_binary)
    raise ValueError(f"unknown toolpath engine {engine!r}; expected one of {ENGINES}")
