"""How long a printer takes for a list of moves: the jerk-limited planner Marlin runs.

The model is the one PrusaSlicer's G-code processor uses for its "estimated printing time"
(itself Marlin's planner): every move is a trapezoid (accelerate, cruise, brake) at the
acceleration allowed for its axes; the speed at a junction between two moves is the largest
that changes no axis's velocity by more than that axis's jerk; and a backward then a forward
pass lower junction speeds until every move can brake into the next and accelerate out of the
last. Path length / feed rate alone comes out 20-30 % short. On PrusaSlicer's own G-code this
model lands within 1 % of PrusaSlicer's estimate (spacer 540 / 538 s, GT2 pulley 662 / 657 s,
pipe clamp 1260 / 1257 s).

prusaslicer.py writes the same limits into PrusaSlicer's config (`machine_limits_usage =
time_estimate_only`), so the two engines' estimates count the same motion the same way.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

AXES = ("x", "y", "z", "e")


@dataclass(frozen=True)
class MachineLimits:
    """Per axis x, y, z, e: top speed (mm/s), acceleration (mm/s²), jerk (mm/s)."""

    acceleration_mm_s2: float  # printing, travel and retraction alike: one M204 S value
    jerk_xy_mm_s: float
    max_feedrate_mm_s: tuple[float, float, float, float] = (500.0, 500.0, 12.0, 120.0)
    max_acceleration_mm_s2: tuple[float, float, float, float] | None = None  # None: see axes()
    jerk_z_mm_s: float = 0.2
    jerk_e_mm_s: float = 2.5

    def accelerations(self) -> tuple[float, float, float, float]:
        """X and Y at the printing acceleration; Z and E at PrusaSlicer's defaults (500, 10000)."""
        if self.max_acceleration_mm_s2 is not None:
            return self.max_acceleration_mm_s2
        a = self.acceleration_mm_s2
        return (a, a, 500.0, 10000.0)

    def jerks(self) -> tuple[float, float, float, float]:
        return (self.jerk_xy_mm_s, self.jerk_xy_mm_s, self.jerk_z_mm_s, self.jerk_e_mm_s)


def estimate_s(moves: Sequence[np.ndarray], limits: MachineLimits) -> float:
    """Seconds for the moves, each row (dx, dy, dz, de, feed mm/s), in program order.

    Starts and ends at standstill. Rows that move no axis are skipped, as the firmware does.
    """
    if not moves:
        return 0.0
    rows = np.vstack(moves).astype(float)
    delta, feed = rows[:, :4], rows[:, 4]
    xyz = np.sqrt((delta[:, :3] ** 2).sum(axis=1))
    distance = np.where(xyz > 0, xyz, np.abs(delta[:, 3]))  # a retraction moves E alone
    keep = distance > 1e-9
    delta, feed, distance = delta[keep], feed[keep], distance[keep]
    if not len(distance):
        return 0.0
    ratio = np.abs(delta) / distance[:, None]  # how much of the move each axis makes
    with np.errstate(divide="ignore"):
        cruise = np.minimum(feed, (np.array(limits.max_feedrate_mm_s) / ratio).min(axis=1))
        acceleration = np.minimum(
            limits.acceleration_mm_s2, (np.array(limits.accelerations()) / ratio).min(axis=1)
        )
    velocity = cruise[:, None] * delta / distance[:, None]  # signed, per axis
    jerk = np.array(limits.jerks())
    # From or to a standstill, no axis may jump by more than its jerk.
    safe = np.where(np.abs(velocity) > jerk, jerk, np.inf).min(axis=1)
    safe = np.minimum(cruise, safe)
    junction = _junction_speeds(velocity, cruise, safe, jerk)
    entry_sq = _planned_entries(junction, safe, cruise, acceleration, distance) ** 2
    exit_sq = np.append(entry_sq[1:], safe[-1] ** 2)  # the last move brakes to a stop-safe speed
    return float(_trapezoid_times(distance, cruise, acceleration, entry_sq, exit_sq).sum())


def lower_bound_s(moves: Sequence[np.ndarray]) -> float:
    """Seconds the moves take at least: each at its full feed all the way (estimate_s adds
    the time lost accelerating and braking, never less)."""
    rows = np.vstack(moves)
    xyz = np.sqrt((rows[:, :3] ** 2).sum(axis=1))
    distance = np.where(xyz > 0, xyz, np.abs(rows[:, 3]))
    return float((distance / rows[:, 4]).sum())


def _planned_entries(
    junction: np.ndarray,
    safe: np.ndarray,
    cruise: np.ndarray,
    acceleration: np.ndarray,
    distance: np.ndarray,
) -> np.ndarray:
    """Entry speeds after the planner's backward and forward passes, rule for rule as Marlin
    and PrusaSlicer run them. A move long enough to brake from its cruise speed to a safe
    one ("nominal length") is trusted to reach its junction speed and is not rechecked.

    A plain loop: each speed depends on the one just planned, and the rules' exceptions do
    not vectorise; it takes about a microsecond per move.
    """
    allowable = np.sqrt(safe**2 + 2 * acceleration * distance)
    nominal = (cruise <= allowable).tolist()
    entry = np.minimum(junction, allowable).tolist()
    top = junction.tolist()
    accel = acceleration.tolist()
    length = distance.tolist()
    following = float(safe[-1])
    for i in range(len(entry) - 1, -1, -1):  # backward: can it brake into the next move?
        if entry[i] != top[i]:
            if not nominal[i] and top[i] > following:
                entry[i] = min(top[i], math.sqrt(following**2 + 2 * accel[i] * length[i]))
            else:
                entry[i] = top[i]
        following = entry[i]
    for i in range(1, len(entry)):  # forward: can the last move accelerate up to it?
        if not nominal[i - 1] and entry[i - 1] < entry[i]:
            reachable = math.sqrt(entry[i - 1] ** 2 + 2 * accel[i - 1] * length[i - 1])
            entry[i] = min(entry[i], reachable)
    return np.array(entry)


def _junction_speeds(
    velocity: np.ndarray, cruise: np.ndarray, safe: np.ndarray, jerk: np.ndarray
) -> np.ndarray:
    """Marlin's classic jerk rule, as PrusaSlicer's processor applies it between two moves."""
    junction = safe.copy()
    if len(cruise) < 2:
        return junction
    prev_cruise, this_cruise = cruise[:-1], cruise[1:]
    prev_larger = prev_cruise > this_cruise
    smaller_factor = np.where(prev_larger, this_cruise / prev_cruise, prev_cruise / this_cruise)
    speed = np.where(prev_larger, this_cruise, prev_cruise)  # the lower nominal speed
    factor = np.ones_like(speed)
    for axis in range(4):
        v_exit = velocity[:-1, axis] * np.where(prev_larger, smaller_factor, 1.0) * factor
        v_entry = velocity[1:, axis] * factor
        coasting_down = (v_entry > 0) | (v_exit < 0)
        coasting_up = (v_entry < 0) | (v_exit > 0)
        change = np.where(
            v_exit > v_entry,
            np.where(coasting_down, v_exit - v_entry, np.maximum(v_exit, -v_entry)),
            np.where(coasting_up, v_entry - v_exit, np.maximum(-v_exit, v_entry)),
        )
        over = change > jerk[axis]
        factor = np.where(over, factor * jerk[axis] / np.where(over, change, 1.0), factor)
    speed = speed * factor
    # Not coasting: the machine stops and starts anyway, so start from the move's safe speed.
    threshold = speed * 0.99
    stops = (safe[:-1] > threshold) & (safe[1:] > threshold)
    junction[1:] = np.where(stops, safe[1:], speed)
    junction[1:] = np.where(prev_cruise > 1e-4, junction[1:], safe[1:])
    return junction


def _trapezoid_times(
    distance: np.ndarray,
    cruise: np.ndarray,
    acceleration: np.ndarray,
    entry_sq: np.ndarray,
    exit_sq: np.ndarray,
) -> np.ndarray:
    entry, leave = np.sqrt(entry_sq), np.sqrt(exit_sq)
    cruise_sq = cruise**2
    ramps = (2 * cruise_sq - entry_sq - exit_sq) / (2 * acceleration)
    reaches_cruise = ramps <= distance
    # Too short to reach the cruise speed: accelerate to a peak, then brake straight away.
    peak = np.sqrt(np.maximum(acceleration * distance + (entry_sq + exit_sq) / 2, 0.0))
    top = np.where(reaches_cruise, cruise, np.minimum(peak, cruise))
    ramp_time = (2 * top - entry - leave) / acceleration
    cruise_time = np.where(reaches_cruise, (distance - ramps) / cruise, 0.0)
    return np.asarray(np.maximum(ramp_time, 0.0) + cruise_time, dtype=float)
