"""What a part script declares, read without running it: its cqgi parameters.

cqgi treats every top-level assignment of a single constant (number, text, True/False) as
a parameter the caller may override; this reads them the same way with `ast`, so the admin
can show them and start a schema from them. Pure: no Django, no CadQuery.
"""

import ast
from typing import Any

ScriptValue = float | int | str | bool


def declared_parameters(script: str) -> dict[str, ScriptValue]:
    """name: default for each parameter the script declares; {} when it does not parse."""
    try:
        tree = ast.parse(script)
    except SyntaxError:
        return {}
    declared: dict[str, ScriptValue] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, int | float | str | bool)
        ):
            declared[node.targets[0].id] = node.value.value
    return declared


def starter_schema(declared: dict[str, ScriptValue]) -> list[dict[str, Any]]:
    """A first parameter schema for these declarations: a length per float, an integer per
    int, a boolean per True/False, a one-choice list per text. The admin sets the ranges."""
    schema: list[dict[str, Any]] = []
    for name, value in declared.items():
        label = name.replace("_", " ").capitalize()
        if isinstance(value, bool):
            spec: dict[str, Any] = {"type": "boolean"}
        elif isinstance(value, int):
            spec = {"type": "integer", "step": 1}
        elif isinstance(value, float):
            spec = {"type": "length", "unit": "mm"}
        else:
            spec = {"type": "choice", "choices": [value]}
        schema.append({"name": name, "label": label, "default": value, **spec, "help": ""})
    return schema


def schema_mismatches(declared: dict[str, ScriptValue], schema: list[dict[str, Any]]) -> list[str]:
    """Where the schema and the script disagree, in words (empty when they agree)."""
    problems = []
    named = {spec.get("name"): spec for spec in schema if isinstance(spec, dict)}
    for name in declared:
        if name not in named:
            problems.append(f"the script declares '{name}', which the schema does not offer")
    for offered, spec in named.items():
        if offered not in declared:
            problems.append(f"the schema offers '{offered}', which the script does not declare")
        elif spec.get("default") != declared[offered]:
            problems.append(
                f"'{offered}' defaults to {spec.get('default')!r} in the schema but "
                f"{declared[offered]!r} in the script"
            )
    return problems
