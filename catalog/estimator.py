"""The geometry estimator of a revision: its volume and size for any configuration, before
the configuration was ever built, from builds of sample configurations measured at publish.

Pure Python, no Django, no numpy: the web process evaluates estimators for every quote of a
configuration nobody built yet (orders.quotes). Fitting them needs numpy and runs in a worker
(catalog.estimator_fit); this module holds what both sides share: the sample configurations
(the corners of the parameter ranges and random valid mixes) and how a configuration becomes
the variables of the fitted formulas.

A fitted formula is a sum of terms, each a coefficient times a product of variables:
- a numeric parameter is the variable x / max (so every variable lies in [0, 1]);
- a boolean is 1 when true; a choice is one 0/1 variable per choice after the first; an
  integer is also 1 when odd;
- two numeric parameters of the same range also give their smaller and their larger.
In the "poly" form the sum is the value itself (volumes of prismatic parts are polynomials in
their lengths: a collar's is pi/4 (outer² - bore²) width); in the "log" form the variables are
logarithms and the value is exp(sum), for parts whose volume is a product of powers (a gear's
grows with module² teeth² face width).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from catalog.parameters import (
    NUMERIC,
    ParameterError,
    ParameterSpec,
    ParameterValue,
    Rule,
    validate_parameters,
)

FORMAT = 1  # bump when the stored JSON changes shape; an older estimator is fitted again
TARGETS = ("volume_mm3", "x_mm", "y_mm", "z_mm")
# The log form's variables: ln(x / max), or ln(x / max + LOG_OFFSET) for parameters that may
# be 0 (a chamfer, a corner radius), so it stays finite.
LOG_OFFSET = 0.05
# How many sample configurations a fit builds: the range corners first (up to CORNERS_MAX),
# then random valid ones up to SAMPLES. Measured in one sandbox process (catalog.geometry.
# measure_geometry): about 0.2-1.5 s a configuration for the seed parts.
SAMPLES = 64
CORNERS_MAX = 24
_TRIES_PER_SAMPLE = 200  # random draws the rules may refuse before we give up on a sample


class EstimatorError(ValueError):
    """A stored estimator that cannot be read, or a configuration it cannot evaluate."""


@dataclass(frozen=True)
class Variable:
    """One variable of the formulas: a numeric parameter scaled by its maximum, a boolean,
    or one choice of a choice parameter."""

    name: str
    kind: str  # "numeric", "flag", "choice", "odd", or "min" / "max" of `name` and `other`
    scale: float = 1.0  # numeric, min, max: the parameter's max
    choice: str = ""  # choice: the value for which the variable is 1
    other: str = ""  # min, max: the second parameter
    # The log form's variable is ln(value + log_offset): 0 for a parameter that is never 0,
    # so products of powers stay exact; LOG_OFFSET for one that may be (a chamfer).
    log_offset: float = LOG_OFFSET

    def value(self, parameters: Mapping[str, Any]) -> float:
        raw = parameters[self.name]
        if self.kind == "numeric":
            return float(raw) / self.scale
        if self.kind in ("min", "max"):
            pair = (float(raw), float(parameters[self.other]))
            return (min(pair) if self.kind == "min" else max(pair)) / self.scale
        if self.kind == "flag":
            return 1.0 if raw is True else 0.0
        if self.kind == "odd":
            return float(int(raw) % 2)
        return 1.0 if str(raw) == self.choice else 0.0

    @property
    def is_indicator(self) -> bool:
        return self.kind in ("flag", "choice", "odd")

    def log(self, value: float) -> float:
        """The log form's variable (a value at or below 0 counts as the smallest positive)."""
        return math.log(max(value + self.log_offset, 1e-9))


@dataclass(frozen=True)
class Formula:
    """One target (volume or one side of the bounding box) as a sum of terms."""

    form: str  # "poly" or "log"
    terms: tuple[tuple[tuple[int, int], ...], ...]  # each: ((variable index, power), ...)
    coefficients: tuple[float, ...]
    low: float  # predictions are held inside [low, high]: a formula never says 0 or 10 m
    high: float


@dataclass(frozen=True)
class Estimate:
    volume_mm3: float
    extents_mm: tuple[float, float, float]


@dataclass(frozen=True)
class GeometryEstimator:
    """A revision's fitted volume and size; `error` is the fit's own cross-validated
    relative volume error (median and worst over the samples), for the admin to judge."""

    variables: tuple[Variable, ...]
    formulas: Mapping[str, Formula]
    samples: int
    median_error: float
    worst_error: float

    def estimate(self, parameters: Mapping[str, Any]) -> Estimate:
        """Volume and bounding box of one canonical configuration."""
        try:
            values = [variable.value(parameters) for variable in self.variables]
        except (KeyError, TypeError, ValueError) as error:
            raise EstimatorError(f"the configuration does not fit: {error!r}") from error
        return Estimate(
            volume_mm3=self._evaluate("volume_mm3", values),
            extents_mm=(
                self._evaluate("x_mm", values),
                self._evaluate("y_mm", values),
                self._evaluate("z_mm", values),
            ),
        )

    def _evaluate(self, target: str, values: Sequence[float]) -> float:
        formula = self.formulas[target]
        if formula.form == "log":
            factors = [
                value if variable.is_indicator else variable.log(value)
                for variable, value in zip(self.variables, values, strict=True)
            ]
            total = sum(
                c * math.prod(factors[i] ** p for i, p in term)
                for c, term in zip(formula.coefficients, formula.terms, strict=True)
            )
            value = math.exp(min(total, 700.0))
        else:
            value = sum(
                c * math.prod(values[i] ** p for i, p in term)
                for c, term in zip(formula.coefficients, formula.terms, strict=True)
            )
        return min(max(value, formula.low), formula.high)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "variables": [
                {
                    "name": v.name,
                    "kind": v.kind,
                    "scale": v.scale,
                    "choice": v.choice,
                    "other": v.other,
                    "log_offset": v.log_offset,
                }
                for v in self.variables
            ],
            "formulas": {
                target: {
                    "form": f.form,
                    "terms": [[list(factor) for factor in term] for term in f.terms],
                    "coefficients": list(f.coefficients),
                    "low": f.low,
                    "high": f.high,
                }
                for target, f in self.formulas.items()
            },
            "samples": self.samples,
            "median_error": self.median_error,
            "worst_error": self.worst_error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GeometryEstimator:
        """The estimator a revision stores; EstimatorError when it is not one we can read."""
        try:
            if data.get("format") != FORMAT:
                raise EstimatorError(f"estimator format {data.get('format')!r} is not {FORMAT}")
            variables = tuple(
                Variable(
                    name=str(v["name"]),
                    kind=str(v["kind"]),
                    scale=float(v["scale"]),
                    choice=str(v["choice"]),
                    other=str(v.get("other", "")),
                    log_offset=float(v.get("log_offset", LOG_OFFSET)),
                )
                for v in data["variables"]
            )
            formulas = {
                target: Formula(
                    form=str(f["form"]),
                    terms=tuple(tuple((int(i), int(p)) for i, p in term) for term in f["terms"]),
                    coefficients=tuple(float(c) for c in f["coefficients"]),
                    low=float(f["low"]),
                    high=float(f["high"]),
                )
                for target, f in data["formulas"].items()
            }
            if set(formulas) != set(TARGETS):
                raise EstimatorError("the estimator lacks a target")
            return cls(
                variables=variables,
                formulas=formulas,
                samples=int(data["samples"]),
                median_error=float(data["median_error"]),
                worst_error=float(data["worst_error"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            if isinstance(error, EstimatorError):
                raise
            raise EstimatorError(f"unreadable estimator: {error!r}") from error


def variables_for(specs: Sequence[ParameterSpec]) -> tuple[Variable, ...]:
    """The formulas' variables for a schema (see the module docstring). Two numeric
    parameters of the same type and range are often interchangeable (a hose barb's two hose
    sizes): the smaller and the larger of the two are variables too, since a script that
    sizes something by min() or max() of them has a kink no polynomial follows."""
    variables: list[Variable] = []
    for spec in specs:
        if spec.type in NUMERIC:
            variables.append(
                Variable(spec.name, "numeric", scale=_scale(spec), log_offset=_log_offset(spec))
            )
            if spec.type == "integer":
                # Alternating features (a hinge leaf's knuckles: half of them, rounded up or
                # down) make a count's parity matter: a switch of its own.
                variables.append(Variable(spec.name, "odd"))
        elif spec.type == "boolean":
            variables.append(Variable(spec.name, "flag"))
        else:
            variables.extend(Variable(spec.name, "choice", choice=c) for c in spec.choices[1:])
    numeric = [spec for spec in specs if spec.type in NUMERIC]
    for index, first in enumerate(numeric):
        for second in numeric[index + 1 :]:
            if (first.type, first.min, first.max) == (second.type, second.min, second.max):
                for kind in ("min", "max"):
                    variables.append(
                        Variable(
                            first.name,
                            kind,
                            scale=_scale(first),
                            other=second.name,
                            log_offset=_log_offset(first),
                        )
                    )
    return tuple(variables)


def _scale(spec: ParameterSpec) -> float:
    return max(abs(spec.max or 0.0), abs(spec.min or 0.0)) or 1.0


def _log_offset(spec: ParameterSpec) -> float:
    return 0.0 if spec.min is not None and spec.min > 0 else LOG_OFFSET


# --- sample configurations -------------------------------------------------------------------


def random_configuration(specs: Sequence[ParameterSpec], rng: random.Random) -> dict[str, Any]:
    """One configuration drawn uniformly from each parameter's range (on its step grid)."""
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.type == "boolean":
            values[spec.name] = rng.random() < 0.5
        elif spec.type == "choice":
            values[spec.name] = rng.choice(spec.choices)
        elif spec.min is None or spec.max is None:
            values[spec.name] = spec.default  # an unbounded draft parameter: hold it
        elif spec.type == "integer":
            values[spec.name] = rng.randint(math.ceil(spec.min), math.floor(spec.max))
        else:
            step = spec.step or (spec.max - spec.min) / 1000 or 1.0
            steps = math.floor((spec.max - spec.min) / step + 1e-9)
            values[spec.name] = round(spec.min + rng.randint(0, steps) * step, 6)
    return values


def random_configurations(
    specs: Sequence[ParameterSpec], rules: Sequence[Rule], *, count: int, seed: str
) -> list[dict[str, ParameterValue]]:
    """Up to `count` different valid configurations (the revision's rules hold), canonical,
    drawn with a seeded generator: the same seed gives the same list."""
    rng = random.Random(seed)
    found: list[dict[str, ParameterValue]] = []
    for _ in range(count * _TRIES_PER_SAMPLE):
        if len(found) == count:
            break
        try:
            values = validate_parameters(specs, random_configuration(specs, rng), rules=rules)
        except ParameterError:
            continue
        if values not in found:
            found.append(values)
    return found


def corner_configurations(
    specs: Sequence[ParameterSpec], rules: Sequence[Rule], *, limit: int, seed: str
) -> list[dict[str, ParameterValue]]:
    """Valid corners of the parameter ranges (each value at its min or max, first or last
    choice, false or true): every corner when there are few, else seeded random ones. The
    rules refuse some corners; those are skipped."""
    count = len(specs)
    rng = random.Random(seed)
    if 2**count <= 4 * limit:
        patterns = [[(n >> i) & 1 for i in range(count)] for n in range(2**count)]
        rng.shuffle(patterns)
    else:
        patterns = [[rng.randint(0, 1) for _ in range(count)] for _ in range(4 * limit)]
    patterns = [[0] * count, [1] * count, *patterns]  # all-low and all-high first
    found: list[dict[str, ParameterValue]] = []
    for pattern in patterns:
        if len(found) == limit:
            break
        values = {s.name: _extreme(s, high) for s, high in zip(specs, pattern, strict=True)}
        try:
            canonical = validate_parameters(specs, values, rules=rules)
        except ParameterError:
            continue
        if canonical not in found:
            found.append(canonical)
    return found


def _extreme(spec: ParameterSpec, high: int) -> Any:
    if spec.type == "choice":
        return spec.choices[-1] if high else spec.choices[0]
    if spec.type == "boolean":
        return bool(high)
    if spec.min is None or spec.max is None:
        return spec.default
    return spec.max if high else spec.min


def sample_configurations(
    specs: Sequence[ParameterSpec],
    rules: Sequence[Rule],
    *,
    seed: str,
    count: int = SAMPLES,
    corners: int = CORNERS_MAX,
) -> list[dict[str, ParameterValue]]:
    """What a fit builds: the defaults, up to `corners` range corners, then random valid
    configurations up to `count` in all (fewer when the rules leave fewer)."""
    found: list[dict[str, ParameterValue]] = []
    try:
        found.append(validate_parameters(specs, {s.name: s.default for s in specs}, rules=rules))
    except ParameterError:
        pass  # defaults that break a rule: the corners and random ones still sample it
    for values in corner_configurations(specs, rules, limit=corners, seed=seed):
        if values not in found and len(found) < count:
            found.append(values)
    for values in random_configurations(specs, rules, count=count, seed=seed):
        if len(found) == count:
            break
        if values not in found:
            found.append(values)
    return found
