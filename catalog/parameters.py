"""Parameter schemas and the validation of parameter values: pure, no Django.

A revision's schema is a list of parameter specs (JSON). Values arrive as JSON numbers or as
strings from forms; `validate_parameters` coerces, range-checks, applies the revision's
cross-parameter rules and returns the canonical form, in which equal configurations are equal
(sorted keys, normalised numbers) so that they hash equally.
"""

import ast
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from simpleeval import EvalWithCompoundTypes, InvalidExpression

ParameterValue = float | int | str | bool
TYPES = ("length", "angle", "integer", "number", "choice", "boolean")
NUMERIC = ("length", "angle", "integer", "number")
UNITS = {"length": "mm", "angle": "°"}
# Canonical numbers keep this many decimals: 0.1 mm / 1e6 is far below any machine's resolution.
DECIMALS = 6


class ParameterError(Exception):
    """Values that do not fit the schema; `errors` maps each field's name to its messages.

    Each message is a whole sentence in the requester's words: it names the parameter by its
    label and gives sizes with their unit ("Bore diameter must be at least 3 mm (got 2 mm)"),
    so it reads the same under the field, in a summary, in an API answer or a job's reason.
    """

    def __init__(self, errors: Mapping[str, list[str]]):
        self.errors = dict(errors)
        said: list[str] = []  # a broken rule is filed under each field it names: say it once
        for messages in self.errors.values():
            said.extend(m for m in messages if m not in said)
        super().__init__("; ".join(said))


class SchemaError(Exception):
    """A revision's schema itself is malformed (caught when the admin saves it)."""


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    label: str
    type: str
    default: ParameterValue
    unit: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class Rule:
    expression: str
    message: str


def parse_schema(raw: Sequence[Mapping[str, Any]]) -> tuple[ParameterSpec, ...]:
    """Turn a schema's JSON into specs, refusing anything malformed with a SchemaError."""
    if not isinstance(raw, list | tuple):
        raise SchemaError("the parameter schema must be a list")
    specs: list[ParameterSpec] = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise SchemaError(f"parameter {index} must be an object")
        name = item.get("name")
        if not isinstance(name, str) or not name.isidentifier():
            raise SchemaError(f"parameter {index}: name must be a Python identifier")
        kind = item.get("type")
        if kind not in TYPES:
            raise SchemaError(f"parameter {name}: type must be one of {', '.join(TYPES)}")
        choices = tuple(str(c) for c in item.get("choices", ()))
        if kind == "choice" and not choices:
            raise SchemaError(f"parameter {name}: a choice needs choices")
        try:
            spec = ParameterSpec(
                name=name,
                label=str(item.get("label") or name.replace("_", " ").capitalize()),
                type=kind,
                default=item["default"],
                unit=str(item.get("unit") or UNITS.get(kind, "")),
                min=_optional_float(item.get("min")),
                max=_optional_float(item.get("max")),
                step=_optional_float(item.get("step")),
                choices=choices,
                help=str(item.get("help") or ""),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise SchemaError(f"parameter {name}: {error}") from error
        if spec.min is not None and spec.max is not None and spec.min > spec.max:
            raise SchemaError(f"parameter {name}: min is above max")
        specs.append(spec)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise SchemaError("parameter names must be unique")
    defaults = {s.name: s.default for s in specs}
    try:
        _check_one_by_one(specs, defaults)
    except ParameterError as error:
        raise SchemaError(f"defaults do not validate: {error}") from error
    return tuple(specs)


def parse_rules(raw: Sequence[Mapping[str, Any]]) -> tuple[Rule, ...]:
    if not isinstance(raw, list | tuple):
        raise SchemaError("rules must be a list")
    rules = []
    for item in raw:
        if not isinstance(item, Mapping) or not isinstance(item.get("rule"), str):
            raise SchemaError("each rule needs a 'rule' expression")
        rules.append(
            Rule(expression=item["rule"], message=str(item.get("message") or item["rule"]))
        )
    return tuple(rules)


def check_publishable(specs: Sequence[ParameterSpec]) -> None:
    """Refuse a schema that lets a number be anything: a script given a negative thickness
    or a 10 m bore builds nonsense (or nothing), so every numeric parameter of a published
    revision is bounded by a min and a max."""
    open_ended = [
        spec.name
        for spec in specs
        if spec.type in NUMERIC and (spec.min is None or spec.max is None)
    ]
    if open_ended:
        raise SchemaError(
            "every numeric parameter needs a range (min and max) before publishing; "
            f"missing on {', '.join(open_ended)}"
        )


def defaults(specs: Sequence[ParameterSpec]) -> dict[str, ParameterValue]:
    return canonical({s.name: s.default for s in specs}, specs)


def validate_parameters(
    specs: Sequence[ParameterSpec],
    values: Mapping[str, Any],
    *,
    rules: Sequence[Rule] = (),
    fill_defaults: bool = False,
) -> dict[str, ParameterValue]:
    """Coerce and check values against the schema; return them canonical or raise ParameterError.

    Unknown names are errors (a typo must not silently build the default part). With
    fill_defaults, missing parameters take their defaults; otherwise they are errors.
    """
    if not isinstance(values, Mapping):
        raise ParameterError({"parameters": ["The parameters must be an object of name: value"]})
    errors: dict[str, list[str]] = {}
    known = {s.name for s in specs}
    for name in values:
        if name not in known:
            errors.setdefault(str(name), []).append(
                f"'{str(name)[:40]}' is not a parameter of this part"
            )
    merged = dict(values)
    for spec in specs:
        if spec.name not in merged:
            if fill_defaults:
                merged[spec.name] = spec.default
            else:
                errors.setdefault(spec.name, []).append(f"{spec.label} is required")
    try:
        coerced = _check_one_by_one(specs, {k: v for k, v in merged.items() if k in known})
    except ParameterError as error:
        for name, messages in error.errors.items():
            errors.setdefault(name, []).extend(messages)
        coerced = {}
    if errors:
        raise ParameterError(errors)
    _check_rules(rules, coerced, specs)
    return canonical(coerced, specs)


def describe(specs: Sequence[ParameterSpec], values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A configuration as people read it: (label, value with its unit) in the schema's
    order, e.g. ("Bore diameter", "25 mm"), ("Flange", "yes"); a value the schema does not
    know (an older revision's) keeps its name."""
    said: list[tuple[str, str]] = []
    for spec in specs:
        if spec.name not in values:
            continue
        value = values[spec.name]
        if isinstance(value, bool):
            shown = "yes" if value else "no"
        elif isinstance(value, int | float):
            shown = _fmt(value) + (f" {spec.unit}" if spec.unit else "")
        else:
            shown = str(value)
        said.append((spec.label, shown))
    known = {s.name for s in specs}
    said.extend((str(name), str(values[name])) for name in values if name not in known)
    return said


def canonical(
    values: Mapping[str, ParameterValue], specs: Sequence[ParameterSpec]
) -> dict[str, ParameterValue]:
    """Sorted keys; integers as int; other numbers rounded to DECIMALS, integral ones as int."""
    kinds = {s.name: s.type for s in specs}
    result: dict[str, ParameterValue] = {}
    for name in sorted(values):
        value = values[name]
        if kinds.get(name) in ("length", "angle", "number"):
            number = round(float(value), DECIMALS)
            value = int(number) if number.is_integer() else number
        result[name] = value
    return result


def parameters_hash(values: Mapping[str, ParameterValue]) -> str:
    return hashlib.sha256(
        json.dumps(values, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _check_one_by_one(
    specs: Sequence[ParameterSpec], values: Mapping[str, Any]
) -> dict[str, ParameterValue]:
    errors: dict[str, list[str]] = {}
    result: dict[str, ParameterValue] = {}
    for spec in specs:
        if spec.name not in values:
            continue
        try:
            result[spec.name] = _coerce(spec, values[spec.name])
        except ValueError as error:
            errors.setdefault(spec.name, []).append(f"{spec.label} {error}")
    if errors:
        raise ParameterError(errors)
    return result


def _coerce(spec: ParameterSpec, raw: Any) -> ParameterValue:
    if spec.type == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(raw, str) and raw.strip().lower() in ("false", "0", "no", "off", ""):
            return False
        raise ValueError("must be true or false")
    if spec.type == "choice":
        if not isinstance(raw, str | int | float) or isinstance(raw, bool):
            raise ValueError("must be one of " + ", ".join(spec.choices))
        choice = str(raw)
        if choice not in spec.choices:
            raise ValueError(f"must be one of {', '.join(spec.choices)} (got '{choice[:40]}')")
        return choice
    number = _number(raw)
    if spec.type == "integer":
        if number != number.to_integral_value():
            raise ValueError("must be a whole number")
        value: float | int = int(number)
    else:
        value = float(number)
    unit = f" {spec.unit}" if spec.unit else ""
    if spec.min is not None and value < spec.min:
        raise ValueError(f"must be at least {_fmt(spec.min)}{unit} (got {_fmt(value)}{unit})")
    if spec.max is not None and value > spec.max:
        raise ValueError(f"must be at most {_fmt(spec.max)}{unit} (got {_fmt(value)}{unit})")
    if spec.step:
        origin = Decimal(str(spec.min)) if spec.min is not None else Decimal(0)
        steps = (number - origin) / Decimal(str(spec.step))
        if steps != steps.to_integral_value():
            raise ValueError(f"must be in steps of {_fmt(spec.step)}{unit}")
    return value


def _number(raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError("must be a number")
    try:
        number = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not number.is_finite() or not math.isfinite(float(number)):
        raise ValueError("must be a finite number")
    return number


def _check_rules(
    rules: Sequence[Rule],
    values: Mapping[str, ParameterValue],
    specs: Sequence[ParameterSpec] = (),
) -> None:
    errors: dict[str, list[str]] = {}
    words = _Words(specs)
    for rule in rules:
        evaluator = EvalWithCompoundTypes(
            names=dict(values), functions={"min": min, "max": max, "abs": abs}
        )
        try:
            holds = bool(evaluator.eval(rule.expression))
        except (InvalidExpression, ArithmeticError, TypeError, SyntaxError) as error:
            raise SchemaError(f"rule '{rule.expression}' cannot be evaluated: {error}") from error
        if not holds:
            fields = [name for name in values if _mentions(rule.expression, name)] or ["parameters"]
            aside = rule.message != rule.expression  # the detail follows the rule's message
            detail = _why_false(rule.expression, evaluator, words, starts=not aside)
            said = words.sentence(rule.message)
            if detail and aside:
                message = f"{said} ({detail})"
            else:
                message = detail or said
            for name in fields:
                errors.setdefault(name, []).append(message)
    if errors:
        raise ParameterError(errors)


class _Words:
    """A schema's words for its parameters: the label for a name, the unit of a size, so a
    rule written over names ("outer_d - bore_d >= 8") is explained in labels and units."""

    def __init__(self, specs: Sequence[ParameterSpec]) -> None:
        self.labels = {s.name: s.label for s in specs}
        self.units = {s.name: s.unit for s in specs}

    def sentence(self, text: str, *, starts: bool = True) -> str:
        """`text` with every parameter name replaced by its label ("make outer_d at least
        bore_d + 8 mm" -> "make outer diameter at least bore diameter + 8 mm"). A label
        keeps its capital only where a sentence starts (`starts`: `text` begins one)."""
        names = sorted((n for n in self.labels if self.labels[n] != n), key=len, reverse=True)
        if not names:
            return text

        def label(match: re.Match[str]) -> str:
            before = text[: match.start()].rstrip()
            first = (starts and not before) or before.endswith(".")
            said = self.labels[match.group(0)]
            return said if first else _mid_sentence(said)

        return re.sub(rf"\b(?:{'|'.join(map(re.escape, names))})\b", label, text)

    def unit(self, node: ast.expr) -> str | None:
        """The unit of an expression over parameters: a name's unit, kept through sums and
        differences of like units and through scaling by a constant; "" for a constant alone
        (it takes the other side's unit); None when units mix or cannot be said."""
        if isinstance(node, ast.Name):
            return self.units.get(node.id) or None
        if isinstance(node, ast.Constant):
            return ""
        if isinstance(node, ast.UnaryOp):
            return self.unit(node.operand)
        if isinstance(node, ast.BinOp):
            left, right = self.unit(node.left), self.unit(node.right)
            if left is None or right is None:
                return None
            if isinstance(node.op, ast.Add | ast.Sub):
                return left if left == right or not right else right if not left else None
            if isinstance(node.op, ast.Mult):
                return left if not right else right if not left else None
            if isinstance(node.op, ast.Div) and not right:
                return left
        return None


def _mid_sentence(label: str) -> str:
    """A label as it reads inside a sentence: "Outer diameter" -> "outer diameter", but
    "GT2 teeth" or "PCB thickness" keep their capitals."""
    first, _, rest = label.partition(" ")
    if first[:1].isupper() and first[1:].islower():
        return f"{first.lower()} {rest}".rstrip()
    return label


_SAYS = {
    ast.Lt: "must be less than",
    ast.LtE: "must be at most",
    ast.Gt: "must be greater than",
    ast.GtE: "must be at least",
    ast.Eq: "must equal",
    ast.NotEq: "must differ from",
}


def _why_false(
    expression: str,
    evaluator: EvalWithCompoundTypes,
    words: "_Words | None" = None,
    *,
    starts: bool = True,
) -> str:
    """For a rule that is one comparison, what it compared, in labels and units: "Bore
    diameter 30 mm must be less than outer diameter - 4 = 6 mm", so that the reason names
    the values, not only the rule. Empty for any other rule (its message says it)."""
    words = words or _Words(())
    try:
        tree = ast.parse(expression.strip(), mode="eval").body
    except SyntaxError:
        return ""
    if not isinstance(tree, ast.Compare) or len(tree.ops) != 1 or type(tree.ops[0]) not in _SAYS:
        return ""
    left, right = tree.left, tree.comparators[0]
    units = [words.unit(left), words.unit(right)]
    # A constant compared with a size is that size's unit: "Width 4 mm must be at least 6 mm".
    if units[0] == "" and units[1]:
        units[0] = units[1]
    if units[1] == "" and units[0]:
        units[1] = units[0]
    sides = []
    for index, side in enumerate((left, right)):
        text = ast.unparse(side)
        try:
            value = evaluator.eval(text)
        except (InvalidExpression, ArithmeticError, TypeError, SyntaxError):
            return ""
        number = isinstance(value, int | float) and not isinstance(value, bool)
        unit = f" {units[index]}" if number and units[index] else ""
        shown = (_fmt(value) if number else repr(value)) + unit
        said = words.sentence(text, starts=starts and not index)
        if isinstance(side, ast.Name):
            sides.append(f"{said} {shown}")
        elif isinstance(side, ast.Constant):
            sides.append(shown if number else text)
        else:
            sides.append(f"{said} = {shown}")
    return f"{sides[0]} {_SAYS[type(tree.ops[0])]} {sides[1]}"


def _mentions(expression: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", expression) is not None


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _fmt(value: float) -> str:
    return f"{value:g}"


def narrowed_schema(
    raw: Sequence[Mapping[str, Any]], name: str, minimum: float, maximum: float
) -> list[dict[str, Any]]:
    """The schema with one numeric parameter's range narrowed to [minimum, maximum] (a new
    revision's, issue #15 point 6): SchemaError saying why when the range is no narrowing of
    the present one. A default outside the new range moves to its nearest end; with a step,
    both ends must lie on the present step grid, so every value allowed stays one it had."""
    minimum, maximum = float(minimum), float(maximum)
    specs = {spec.name: spec for spec in parse_schema(raw)}
    spec = specs.get(name)
    if spec is None:
        raise SchemaError(f"'{name[:40]}' is not a parameter of this revision")
    if spec.type not in NUMERIC:
        raise SchemaError(f"{spec.label} is not a number: only numeric ranges can be narrowed")
    for value in (minimum, maximum):
        if not math.isfinite(value):
            raise SchemaError(f"{spec.label}: give finite numbers for the range")
    unit = f" {spec.unit}" if spec.unit else ""
    if minimum >= maximum:
        raise SchemaError(
            f"{spec.label}: the minimum ({_fmt(minimum)}{unit}) must be below the maximum "
            f"({_fmt(maximum)}{unit})"
        )
    if spec.min is not None and minimum < spec.min:
        raise SchemaError(
            f"{spec.label}: {_fmt(minimum)}{unit} is below the present minimum "
            f"{_fmt(spec.min)}{unit}; a range can only be narrowed"
        )
    if spec.max is not None and maximum > spec.max:
        raise SchemaError(
            f"{spec.label}: {_fmt(maximum)}{unit} is above the present maximum "
            f"{_fmt(spec.max)}{unit}; a range can only be narrowed"
        )
    if minimum == spec.min and maximum == spec.max:
        raise SchemaError(f"{spec.label}: the range is unchanged")
    if spec.type == "integer" and not (minimum.is_integer() and maximum.is_integer()):
        raise SchemaError(f"{spec.label} is a whole number: give whole numbers for the range")
    if spec.step:
        origin = Decimal(str(spec.min)) if spec.min is not None else Decimal(0)
        for value in (minimum, maximum):
            steps = (Decimal(str(value)) - origin) / Decimal(str(spec.step))
            if steps != steps.to_integral_value():
                raise SchemaError(
                    f"{spec.label}: {_fmt(value)}{unit} is not in steps of "
                    f"{_fmt(spec.step)}{unit} from {_fmt(float(origin))}{unit}"
                )
    narrowed = []
    for item in raw:
        item = dict(item)
        if item.get("name") == name:
            low: float | int = int(minimum) if spec.type == "integer" else minimum
            high: float | int = int(maximum) if spec.type == "integer" else maximum
            default = float(spec.default)
            item.update(min=low, max=high, default=min(max(default, low), high))
            if spec.type == "integer":
                item["default"] = int(item["default"])
        narrowed.append(item)
    parse_schema(narrowed)  # the defaults of every parameter still validate
    return narrowed
