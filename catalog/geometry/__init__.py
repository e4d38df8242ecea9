"""Part geometry from CadQuery scripts or static models, built in a sandboxed subprocess.

Pure: no Django here. The caller turns settings into a BuildLimits. CadQuery itself is
only ever imported by the child process (catalog/geometry/child.py).
"""

from .build import (
    ENGINE_VERSION,
    MEASURE_BATCH_MAX,
    SCRIPT,
    STATIC,
    Geometry,
    Measurement,
    build_geometry,
    build_revision,
    check_parameters,
    measure_geometry,
)
from .drawing import DrawingInvalid, drawing_clean
from .sandbox import BuildFailed, BuildLimits
from .uploads import ModelInfo, ModelInvalid, inspect_model, model_format, scale_stl
from .warm import warm_pool_close, warm_pool_configure, warm_pool_prestart, warm_pool_stats

__all__ = [
    "ENGINE_VERSION",
    "SCRIPT",
    "STATIC",
    "BuildFailed",
    "BuildLimits",
    "DrawingInvalid",
    "MEASURE_BATCH_MAX",
    "Geometry",
    "ModelInfo",
    "Measurement",
    "ModelInvalid",
    "build_geometry",
    "build_revision",
    "check_parameters",
    "drawing_clean",
    "inspect_model",
    "measure_geometry",
    "model_format",
    "scale_stl",
    "warm_pool_close",
    "warm_pool_configure",
    "warm_pool_prestart",
    "warm_pool_stats",
]
