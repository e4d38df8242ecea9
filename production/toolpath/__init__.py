"""Our FDM slicer: pure Python, no Django, no clock, no network.

`plan_toolpath(stl, profile)` loads the mesh (slicing.py), cuts it into one region per layer,
turns each region into skirt, perimeters and infill (paths.py) and writes them as G-code
with the time and filament estimates (gcode.py).
"""

from production.toolpath.planner import ENGINE, Toolpath, plan_toolpath
from production.toolpath.profile import FdmProfile

__all__ = ["ENGINE", "FdmProfile", "Toolpath", "plan_toolpath"]
