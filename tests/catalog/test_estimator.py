"""The geometry estimator: sample configurations, the fit (catalog.estimator_fit) and its
evaluation (catalog.estimator), on synthetic parts whose volume is known exactly. Pure: no
database, no CAD (tests/catalog/geometry/test_quote_accuracy.py builds real parts)."""

import json
import math
from typing import Any

import pytest

from catalog.estimator import (
    EstimatorError,
    GeometryEstimator,
    corner_configurations,
    random_configurations,
    sample_configurations,
    variables_for,
)
from catalog.estimator_fit import MIN_SAMPLES, FitError, Sample, fit_estimator
from catalog.parameters import parse_rules, parse_schema, validate_parameters


def length(name: str, low: float, high: float, default: float) -> dict[str, Any]:
    return {"name": name, "type": "length", "min": low, "max": high, "default": default}


COLLAR = parse_schema(
    [
        length("bore_d", 3, 80, 25),
        length("outer_d", 11, 120, 45),
        length("width", 6, 40, 14),
    ]
)
COLLAR_RULES = parse_rules([{"rule": "outer_d - bore_d >= 8", "message": "wall"}])


def collar(values: dict[str, Any]) -> Sample:
    """A ring: pi/4 (outer² - bore²) width, a cubic in the parameters."""
    bore, outer, width = values["bore_d"], values["outer_d"], values["width"]
    volume = math.pi / 4 * (outer**2 - bore**2) * width
    return Sample(values, volume, (outer, outer, width))


def samples_of(schema: Any, rules: Any, measure: Any, *, seed: str, count: int = 48) -> list:
    return [
        measure(values) for values in sample_configurations(schema, rules, seed=seed, count=count)
    ]


def relative_errors(estimator: GeometryEstimator, schema: Any, rules: Any, measure: Any) -> list:
    errors = []
    for values in random_configurations(schema, rules, count=30, seed="held-out"):
        truth = measure(values)
        estimate = estimator.estimate(values)
        errors.append(abs(estimate.volume_mm3 - truth.volume_mm3) / truth.volume_mm3)
        for side, true_side in zip(estimate.extents_mm, truth.extents_mm, strict=True):
            errors.append(abs(side - true_side) / true_side)
    return errors


def test_samples_are_valid_distinct_repeatable_and_start_with_defaults_and_corners() -> None:
    first = sample_configurations(COLLAR, COLLAR_RULES, seed="s", count=40)
    again = sample_configurations(COLLAR, COLLAR_RULES, seed="s", count=40)

    assert first == again and len(first) == 40
    assert all(validate_parameters(COLLAR, v, rules=COLLAR_RULES) == v for v in first)
    assert len({json.dumps(v, sort_keys=True) for v in first}) == 40
    assert first[0] == {"bore_d": 25, "outer_d": 45, "width": 14}
    corners = corner_configurations(COLLAR, COLLAR_RULES, limit=8, seed="s")
    # 3 parameters: 8 corners, of which the rule refuses those with a bore of 80 and an outer
    # diameter of 11 (2 of 8).
    assert len(corners) == 6 and all(c in first for c in corners)


def test_a_cubic_volume_is_fitted_exactly_and_survives_json() -> None:
    variables = variables_for(COLLAR)
    fitted = fit_estimator(variables, samples_of(COLLAR, COLLAR_RULES, collar, seed="c"))
    stored = GeometryEstimator.from_json(json.loads(json.dumps(fitted.to_json())))

    errors = relative_errors(stored, COLLAR, COLLAR_RULES, collar)
    assert max(errors) < 1e-6
    assert fitted.formulas["volume_mm3"].form == "poly"
    assert fitted.worst_error < 1e-6 and fitted.samples == 48


def test_a_product_of_powers_is_fitted_in_the_log_form() -> None:
    schema = parse_schema(
        [
            {"name": "module", "type": "number", "min": 0.5, "max": 4, "default": 1.5},
            {"name": "teeth", "type": "integer", "min": 10, "max": 120, "default": 24},
            length("face", 3, 40, 8),
        ]
    )

    def gear(values: dict[str, Any]) -> Sample:
        pitch = values["module"] * values["teeth"]
        return Sample(values, 0.7 * pitch**2.2 * values["face"], (pitch, pitch, values["face"]))

    fitted = fit_estimator(variables_for(schema), samples_of(schema, (), gear, seed="g"))

    assert max(relative_errors(fitted, schema, (), gear)) < 1e-6
    assert fitted.formulas["volume_mm3"].form == "log"


def test_a_boolean_switches_its_own_terms_and_a_choice_its_own() -> None:
    schema = parse_schema(
        [
            length("outer_d", 10, 100, 20),
            length("length", 5, 100, 20),
            {"name": "flanged", "type": "boolean", "default": False},
            {"name": "shape", "type": "choice", "choices": ["round", "hex"], "default": "round"},
        ]
    )

    def spacer(values: dict[str, Any]) -> Sample:
        section = 0.866 if values["shape"] == "hex" else math.pi / 4
        volume = section * values["outer_d"] ** 2 * values["length"]
        if values["flanged"]:
            volume += math.pi / 4 * (values["outer_d"] + 10) ** 2 * 3
        size = values["outer_d"] + (10 if values["flanged"] else 0)
        return Sample(values, volume, (size, size, values["length"]))

    fitted = fit_estimator(variables_for(schema), samples_of(schema, (), spacer, seed="p"))

    assert max(relative_errors(fitted, schema, (), spacer)) < 1e-3


def test_interchangeable_parameters_get_their_smaller_and_larger_as_variables() -> None:
    schema = parse_schema([length("hose_a", 5, 25, 10), length("hose_b", 5, 25, 8)])

    def barb(values: dict[str, Any]) -> Sample:
        # The bore follows the smaller hose, the collar the larger: kinks where they are equal.
        small, large = sorted((values["hose_a"], values["hose_b"]))
        a, b = values["hose_a"], values["hose_b"]
        volume = 30 * (a**2 + b**2) + 50 * large**2 - 40 * small**2
        return Sample(values, volume, (large, large, 60.0))

    variables = variables_for(schema)
    fitted = fit_estimator(variables, samples_of(schema, (), barb, seed="b"))

    assert [v.kind for v in variables] == ["numeric", "numeric", "min", "max"]
    assert max(relative_errors(fitted, schema, (), barb)) < 1e-3


def test_estimates_stay_inside_the_measured_range() -> None:
    fitted = fit_estimator(
        variables_for(COLLAR), samples_of(COLLAR, COLLAR_RULES, collar, seed="c")
    )
    formula = fitted.formulas["volume_mm3"]

    assert formula.low > 0 and formula.high < 1e9


def test_too_few_samples_fit_nothing() -> None:
    few = samples_of(COLLAR, COLLAR_RULES, collar, seed="c", count=MIN_SAMPLES - 1)

    with pytest.raises(FitError, match="at least 8"):
        fit_estimator(variables_for(COLLAR), few)


@pytest.mark.parametrize(
    "stored",
    [
        {},
        {"format": 99},
        {"format": 1, "variables": [], "formulas": {}, "samples": 1},
        {"format": 1, "variables": "x", "formulas": [], "samples": 1},
    ],
)
def test_an_unreadable_estimator_is_refused_with_a_reason(stored: dict[str, Any]) -> None:
    with pytest.raises(EstimatorError):
        GeometryEstimator.from_json(stored)


def test_a_configuration_missing_a_parameter_cannot_be_estimated() -> None:
    fitted = fit_estimator(
        variables_for(COLLAR), samples_of(COLLAR, COLLAR_RULES, collar, seed="c")
    )

    with pytest.raises(EstimatorError, match="bore_d"):
        fitted.estimate({"outer_d": 40, "width": 10})


def test_a_count_whose_parity_matters_is_fitted_with_its_odd_switch() -> None:
    schema = parse_schema(
        [
            length("length", 20, 150, 50),
            {"name": "knuckles", "type": "integer", "min": 3, "max": 9, "default": 5},
        ]
    )

    def leaf(values: dict[str, Any]) -> Sample:
        # Every other knuckle is this leaf's own: half of them, rounded up.
        own = math.ceil(values["knuckles"] / 2)
        volume = 100 * values["length"] + 40 * own * values["length"] / values["knuckles"]
        return Sample(values, volume, (30.0, values["length"], 8.0))

    variables = variables_for(schema)
    fitted = fit_estimator(variables, samples_of(schema, (), leaf, seed="h"))

    assert [v.kind for v in variables] == ["numeric", "numeric", "odd"]
    assert max(relative_errors(fitted, schema, (), leaf)) < 0.01
