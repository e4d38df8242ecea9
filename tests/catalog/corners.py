"""The corners of a part's parameter space: the configurations most likely to break a script."""

import random
from typing import Any

from catalog.parameters import ParameterError, parse_rules, parse_schema, validate_parameters
from catalog.parts import DemoPart


def extremes(parameter: dict[str, Any]) -> tuple[Any, Any]:
    """The lowest and highest value a parameter can take (first and last choice, False and True)."""
    if parameter["type"] == "choice":
        return parameter["choices"][0], parameter["choices"][-1]
    if parameter["type"] == "boolean":
        return False, True
    return parameter["min"], parameter["max"]


def corners(part: DemoPart, *, limit: int = 4, tries: int = 40) -> dict[str, dict[str, Any]]:
    """Up to `limit` corners by name: all low, all high, alternating both ways, then seeded
    random mixes. Those the part's own rules refuse are skipped (checked with
    catalog.parameters), so a part whose rules forbid the plain corners still gets mixed ones."""
    schema, rules = parse_schema(part.schema), parse_rules(part.rules)
    count = len(part.schema)
    patterns = {
        "all-min": [0] * count,
        "all-max": [1] * count,
        "alternating": [i % 2 for i in range(count)],
        "alternating-flipped": [1 - i % 2 for i in range(count)],
    }
    seeded = random.Random(part.slug)
    for n in range(tries):
        patterns[f"mixed-{n + 1}"] = [seeded.randint(0, 1) for _ in range(count)]
    valid: dict[str, dict[str, Any]] = {}
    for name, pattern in patterns.items():
        if len(valid) == limit:
            break
        values = {
            p["name"]: extremes(p)[high] for p, high in zip(part.schema, pattern, strict=True)
        }
        try:
            canonical = validate_parameters(schema, values, rules=rules)
        except ParameterError:
            continue
        if canonical not in valid.values():
            valid[name] = canonical
    return valid
