import numpy as np
import pytest

from production.toolpath.motion import MachineLimits, estimate_s

LIMITS = MachineLimits(acceleration_mm_s2=1000, jerk_xy_mm_s=10)


def moves(*rows: tuple[float, float, float, float, float]) -> list[np.ndarray]:
    return [np.array(rows, dtype=float)]


def test_a_straight_line_ramps_from_and_to_the_jerk_speed() -> None:
    # 10 -> 50 mm/s at 1000 mm/s² takes 0.04 s over 1.2 mm, at each end; the rest cruises.
    seconds = estimate_s(moves((100, 0, 0, 0, 50)), LIMITS)
    assert seconds == pytest.approx(2 * 0.04 + (100 - 2 * 1.2) / 50)


def test_a_line_in_many_collinear_pieces_takes_as_long_as_in_one() -> None:
    pieces = estimate_s(moves(*[(1, 0, 0, 0, 50)] * 100), LIMITS)
    assert pieces == pytest.approx(estimate_s(moves((100, 0, 0, 0, 50)), LIMITS))


def test_a_square_slows_to_the_jerk_speed_at_every_corner() -> None:
    # A right angle changes X and Y by the full speed each: the junction is the jerk, 10 mm/s,
    # so each 10 mm side is the straight line above, 10 mm long.
    square = moves((10, 0, 0, 0, 50), (0, 10, 0, 0, 50), (-10, 0, 0, 0, 50), (0, -10, 0, 0, 50))
    assert estimate_s(square, LIMITS) == pytest.approx(4 * (2 * 0.04 + (10 - 2 * 1.2) / 50))


def test_a_move_too_short_for_full_speed_peaks_halfway() -> None:
    # 1 mm from 10 mm/s: the peak v² = 10² + 1000 * 1 -> 33.2 mm/s, reached after 0.5 mm.
    peak = (100 + 1000) ** 0.5
    assert estimate_s(moves((1, 0, 0, 0, 50)), LIMITS) == pytest.approx(2 * (peak - 10) / 1000)


def test_a_retraction_starts_from_the_extruders_jerk_and_peaks_short_of_its_speed() -> None:
    # E alone: from E's jerk, 2.5 mm/s, at the one acceleration (1000 mm/s²); 0.8 mm is too
    # short to reach 35 mm/s, so it peaks at v² = 2.5² + 1000 * 0.8.
    peak = (2.5**2 + 1000 * 0.8) ** 0.5
    seconds = estimate_s(moves((0, 0, 0, -0.8, 35)), LIMITS)
    assert seconds == pytest.approx(2 * (peak - 2.5) / 1000)


def test_nothing_to_move_takes_no_time() -> None:
    assert estimate_s([], LIMITS) == 0
    assert estimate_s(moves((0, 0, 0, 0, 50)), LIMITS) == 0
