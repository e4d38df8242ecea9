"""Part geometry from CadQuery scripts, built in a sandboxed subprocess.

Pure: no Django here. The caller turns settings into a BuildLimits. CadQuery itself is
only ever imported by the child process (catalog/geometry/child.py).
"""

from .build import ENGINE_VERSION, Geometry, build_geometry
from .sandbox import BuildFailed, BuildLimits

__all__ = ["ENGINE_VERSION", "BuildFailed", "BuildLimits", "Geometry", "build_geometry"]
