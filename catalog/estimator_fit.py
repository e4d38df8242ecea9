"""Fitting a revision's geometry estimator to measured sample configurations (numpy).

Worker side only (catalog.tasks): the web process evaluates the result with catalog.estimator
and never imports numpy.

Each target (the volume, each side of the bounding box) is fitted three ways, each with three
sets of variables, and the best by cross-validation is kept (VARIANTS, VARIABLE_SETS):
- "poly": a polynomial in the scaled parameters, terms up to degree 3, or up to 5, each
  optionally switched by one boolean or choice, least squares on the relative error;
- "log": the same on the logarithms of the parameters (terms up to degree 2) and of the
  target, so products of powers are exact.
Terms are chosen by forward selection (orthogonal least squares: the term that lowers the
residual most, one at a time), and how many to keep by K-fold cross-validation, so a part
with 64 samples and 500 candidate terms keeps the dozen that carry it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from catalog.estimator import (
    TARGETS,
    Formula,
    GeometryEstimator,
    Variable,
)

# Each fit tried: (form, highest degree). A high degree lowered until the candidates fit
# MAX_CANDIDATES; cross-validation picks among them (a gear's volume needs degree 5, module²
# teeth² face width; a spacer's is cubic, and more candidates only give selection rope).
VARIANTS = (("poly", 3), ("poly", 5), ("log", 2))
# ... each with these variables (catalog.estimator.Variable.kind): the parameters alone; with
# the smaller and larger of interchangeable ones; with the parity of counts too. Extra
# variables are extra rope for the selection: they are kept only where they predict better.
VARIABLE_SETS = (
    frozenset({"numeric", "flag", "choice"}),
    frozenset({"numeric", "flag", "choice", "min", "max"}),
    frozenset({"numeric", "flag", "choice", "min", "max", "odd"}),
)
MAX_CANDIDATES = 1500  # terms the selection considers, per form
FOLDS = 5
MAX_TERMS = 40
MIN_SAMPLES = 8  # fewer measured configurations than this: no estimator
# A term switched on in fewer samples than this is never chosen: fitted to a handful of
# points, it says nothing reliable about the configurations between them.
MIN_SUPPORT = 4

Array = NDArray[np.float64]
Term = tuple[tuple[int, int], ...]


class FitError(ValueError):
    """Too few measured samples to fit anything worth quoting on."""


@dataclass(frozen=True)
class Sample:
    parameters: Mapping[str, Any]
    volume_mm3: float
    extents_mm: tuple[float, float, float]


def fit_estimator(variables: Sequence[Variable], samples: Sequence[Sample]) -> GeometryEstimator:
    """The estimator that best predicts these samples (each target's form and terms chosen
    by cross-validation). Deterministic: the same samples give the same estimator."""
    if len(samples) < MIN_SAMPLES:
        raise FitError(f"{len(samples)} measured configurations; at least {MIN_SAMPLES} needed")
    values = np.array(
        [[variable.value(sample.parameters) for variable in variables] for sample in samples],
        dtype=float,
    ).reshape(len(samples), len(variables))
    targets = {
        "volume_mm3": np.array([s.volume_mm3 for s in samples]),
        "x_mm": np.array([s.extents_mm[0] for s in samples]),
        "y_mm": np.array([s.extents_mm[1] for s in samples]),
        "z_mm": np.array([s.extents_mm[2] for s in samples]),
    }
    formulas: dict[str, Formula] = {}
    errors: Array = np.zeros(0)
    for target in TARGETS:
        formula, cv_errors = _fit_target(variables, values, targets[target])
        formulas[target] = formula
        if target == "volume_mm3":
            errors = cv_errors
    return GeometryEstimator(
        variables=tuple(variables),
        formulas=formulas,
        samples=len(samples),
        median_error=round(float(np.median(errors)), 5),
        worst_error=round(float(np.max(errors)), 5),
    )


def _fit_target(variables: Sequence[Variable], values: Array, y: Array) -> tuple[Formula, Array]:
    """The best fit of one target (VARIANTS x VARIABLE_SETS), and its cross-validated relative
    errors."""
    low, high = float(y.min()) * 0.5, float(y.max()) * 2.0
    best: tuple[float, Formula, Array] | None = None
    kinds_present = {variable.kind for variable in variables}
    sets = {kinds & kinds_present for kinds in VARIABLE_SETS}  # the same set is fitted once
    for (form, degree), kinds in itertools.product(VARIANTS, sorted(sets, key=len)):
        terms = _candidates(variables, degree, kinds)
        columns = _columns(variables, values, terms, form)
        target = np.log(y) if form == "log" else y
        weights = np.ones_like(y) if form == "log" else 1.0 / y
        count, cv_errors = _choose_count(columns, target, weights, y, form)
        chosen, coefficients = _fit(columns, target, weights, count)
        score = _score(cv_errors)
        formula = Formula(
            form=form,
            terms=tuple(terms[j] for j in chosen),
            coefficients=tuple(float(c) for c in coefficients),
            low=low,
            high=high,
        )
        if best is None or score < best[0]:
            best = (score, formula, cv_errors)
    assert best is not None
    return best[1], best[2]


def _score(errors: Array) -> float:
    """What a fit is judged on: its typical error, and its worst one a little."""
    return float(np.mean(errors) + 0.1 * np.max(errors))


def _candidates(variables: Sequence[Variable], degree: int, kinds: frozenset[str]) -> list[Term]:
    """Every term the selection may take, of the variables of these kinds: the constant,
    products of numeric variables up to `degree`, and each of those switched by one indicator
    or by two of different parameters (a standoff's hole is set by its thread and by tap or
    clearance together)."""
    numeric = [i for i, v in enumerate(variables) if not v.is_indicator and v.kind in kinds]
    single = [(i,) for i, v in enumerate(variables) if v.is_indicator and v.kind in kinds]
    pairs = [
        (i, j)
        for (i,), (j,) in itertools.combinations(single, 2)
        if variables[i].name != variables[j].name
    ]
    switches: list[tuple[int, ...]] = [*single, *pairs]
    while degree > 1 and math.comb(len(numeric) + degree, degree) * (1 + len(switches)) > (
        MAX_CANDIDATES
    ):
        degree -= 1
    monomials: list[Term] = [()]
    for d in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(numeric, d):
            monomials.append(tuple((i, combo.count(i)) for i in sorted(set(combo))))
    terms = list(monomials)
    for switch in switches:
        terms.extend(tuple(sorted((*((i, 1) for i in switch), *term))) for term in monomials)
    return terms


def _columns(
    variables: Sequence[Variable], values: Array, terms: Sequence[Term], form: str
) -> Array:
    factors = values.copy()
    if form == "log":
        for i, variable in enumerate(variables):
            if not variable.is_indicator:
                factors[:, i] = np.log(np.maximum(values[:, i] + variable.log_offset, 1e-9))
    columns = np.ones((values.shape[0], len(terms)))
    for j, term in enumerate(terms):
        for i, power in term:
            columns[:, j] *= factors[:, i] ** power
    return columns


def _path(columns: Array, target: Array, weights: Array, limit: int) -> list[int]:
    """Forward selection: the order in which terms lower the weighted residual most (the
    constant first). Orthogonal least squares: candidates are kept orthogonal to the chosen."""
    residual_columns = columns * weights[:, None]
    residual = target * weights
    norms0 = (residual_columns**2).sum(axis=0)
    supported = (columns != 0).sum(axis=0) >= min(MIN_SUPPORT, len(target))
    chosen: list[int] = []
    for _ in range(min(limit, columns.shape[1])):
        norms = (residual_columns**2).sum(axis=0)
        usable = supported & (norms > 1e-9 * np.maximum(norms0, 1e-300))
        usable[chosen] = False
        if not usable.any():
            break
        if not chosen:
            pick = 0  # the constant term
        else:
            gains = (residual_columns.T @ residual) ** 2
            scores = np.full(len(norms), -1.0)
            scores[usable] = gains[usable] / norms[usable]
            pick = int(np.argmax(scores))
        chosen.append(pick)
        q = residual_columns[:, pick] / np.sqrt(norms[pick])
        residual = residual - q * (q @ residual)
        residual_columns = residual_columns - np.outer(q, q @ residual_columns)
    return chosen


def _solve(columns: Array, target: Array, weights: Array) -> Array:
    solution, *_ = np.linalg.lstsq(columns * weights[:, None], target * weights, rcond=None)
    return np.asarray(solution, dtype=float)


def _predict(form: str, columns: Array, coefficients: Array) -> Array:
    raw = columns @ coefficients
    return np.exp(np.minimum(raw, 700.0)) if form == "log" else raw


def _choose_count(
    columns: Array, target: Array, weights: Array, y: Array, form: str
) -> tuple[int, Array]:
    """How many terms to keep: the count whose K-fold cross-validated relative errors score
    best; those errors (one per sample)."""
    n = len(y)
    limit = max(1, min(MAX_TERMS, int(n * 0.7) - 1))
    folds = np.arange(n) % FOLDS
    errors = np.full((limit, n), np.inf)
    for fold in range(FOLDS):
        held = folds == fold
        train = ~held
        path = _path(columns[train], target[train], weights[train], limit)
        for k in range(1, len(path) + 1):
            picked = path[:k]
            coefficients = _solve(columns[train][:, picked], target[train], weights[train])
            predicted = _predict(form, columns[held][:, picked], coefficients)
            predicted = np.clip(predicted, y.min() * 0.5, y.max() * 2.0)
            errors[k - 1, held] = np.abs(predicted - y[held]) / y[held]
    scores = [_score(row) if np.isfinite(row).all() else np.inf for row in errors]
    best = int(np.argmin(scores))
    return best + 1, errors[best]


def _fit(columns: Array, target: Array, weights: Array, count: int) -> tuple[list[int], Array]:
    chosen = _path(columns, target, weights, count)
    return chosen, _solve(columns[:, chosen], target, weights)
