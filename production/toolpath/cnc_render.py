"""A picture of the simulated stock for the traveler: grey by depth, lit from the back left.

Printed in black and white, the stock's uncut top is white, deeper faces darker, cut-through
cells (the profile's slot, through holes) black; every wall's top edge is a dark line and a
light from the back left shades the walls. Front of the stock (y = 0) at the bottom, as the
operator sees it.
"""

import io

import numpy as np
from PIL import Image
from scipy import ndimage

from production.toolpath.cnc_verify import Simulation

WIDTH_PX = 800  # the traveler's picture is scaled to this width (at most 4 px per cell)
THROUGH_GREY = 0  # cut through the stock
FLOOR_GREY = 110  # the deepest cut that is not through
TOP_GREY = 255  # the stock's top
EDGE_GREY = 60  # a wall's top edge
EDGE_STEP_MM = 0.25  # a step this high to a neighbouring cell is a wall


def render_simulation(simulation: Simulation, *, width_px: int = WIDTH_PX) -> bytes:
    """The simulated stock as a greyscale PNG; the same simulation gives the same bytes."""
    zmap = simulation.zmap
    floor = simulation.floor_mm
    depth = np.clip(zmap / floor, 0.0, 1.0) if floor < 0 else np.zeros_like(zmap)
    grey = TOP_GREY - (TOP_GREY - FLOOR_GREY) * depth
    # Walls: the slope towards the light (back left: -x, +y) lightens, away darkens.
    step = simulation.resolution_mm
    slope_y, slope_x = np.gradient(zmap, step)
    light = np.clip(-slope_x + slope_y, -4.0, 4.0) / 4.0
    grey = np.clip(grey + 40.0 * light, FLOOR_GREY / 2, TOP_GREY)
    # An outline where the surface steps, on the higher side: walls read as lines on paper.
    lowest_near = ndimage.grey_erosion(zmap, size=(3, 3), mode="nearest")
    grey[zmap - lowest_near > EDGE_STEP_MM] = EDGE_GREY
    grey[zmap <= floor + 1e-6] = THROUGH_GREY
    pixels = np.flipud(grey).astype(np.uint8)  # row 0 is the back of the stock
    image = Image.fromarray(pixels)
    ny, nx = zmap.shape
    scale = min(width_px / nx, 4.0)
    if scale != 1.0:
        size = (max(1, round(nx * scale)), max(1, round(ny * scale)))
        image = image.resize(size, Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
