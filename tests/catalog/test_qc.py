import pytest

from catalog.parameters import SchemaError, parse_schema
from catalog.qc import parse_qc_checks, parse_work_instructions, qc_lines
from catalog.scripts import declared_parameters, schema_mismatches, starter_schema

SPECS = parse_schema(
    [
        {"name": "bore_d", "type": "length", "default": 25, "min": 3, "max": 80},
        {"name": "finish", "type": "choice", "default": "plain", "choices": ["plain"]},
    ]
)


def test_qc_checks_take_the_configured_value_or_a_fixed_nominal() -> None:
    checks = parse_qc_checks(
        [
            {
                "label": "Bore",
                "parameter": "bore_d",
                "offset": 0.2,
                "tolerance_minus": 0,
                "tolerance_plus": 0.2,
            },
            {"label": "Flange", "nominal": 3, "tolerance_minus": 0.1, "tolerance_plus": 0.1},
        ],
        SPECS,
    )

    lines = qc_lines(checks, {"bore_d": 30, "finish": "plain"})

    assert [(line.label, line.nominal_text, line.tolerance) for line in lines] == [
        ("Bore", "30.2 mm", "-0 / +0.2"),
        ("Flange", "3 mm", "± 0.1"),
    ]


@pytest.mark.parametrize(
    "check, message",
    [
        (
            {"label": "Bore", "parameter": "bore", "tolerance_minus": 0, "tolerance_plus": 0},
            "not a parameter",
        ),
        (
            {"label": "Finish", "parameter": "finish", "tolerance_minus": 0, "tolerance_plus": 0},
            "not a dimension",
        ),
        (
            {"label": "Bore", "tolerance_minus": 0, "tolerance_plus": 0},
            "either a parameter or a nominal",
        ),
        (
            {
                "label": "Bore",
                "nominal": 1,
                "parameter": "bore_d",
                "tolerance_minus": 0,
                "tolerance_plus": 0,
            },
            "either",
        ),
        ({"label": "Bore", "nominal": 1, "tolerance_minus": -1, "tolerance_plus": 0}, "0 or more"),
        (
            {"label": "Bore", "nominal": float("nan"), "tolerance_minus": 0, "tolerance_plus": 0},
            "finite",
        ),
        ({"label": "", "nominal": 1, "tolerance_minus": 0, "tolerance_plus": 0}, "needs a label"),
        ({"label": "Bore", "nominal": 1, "tolerance_plus": 0}, "tolerance_minus must be a number"),
        (
            {"label": "Bore", "nominal": 1, "tolerance_minus": 0, "tolerance_plus": 0, "x": 1},
            "unknown keys",
        ),
    ],
)
def test_malformed_qc_checks_are_refused(check: dict, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        parse_qc_checks([check], SPECS)


def test_work_instructions_are_a_list_of_texts() -> None:
    assert parse_work_instructions(["  Deburr the bore "]) == ("Deburr the bore",)
    with pytest.raises(SchemaError):
        parse_work_instructions("Deburr")
    with pytest.raises(SchemaError):
        parse_work_instructions([""])


def test_the_script_declares_its_single_constant_assignments_as_parameters() -> None:
    script = (
        "import cadquery as cq\nbore_d = 25.0\nteeth = 20\nkeyway = False\nthread = 'M6'\n"
        "gap, play = 0.4, 0.2\nradius = bore_d / 2\n"
    )

    declared = declared_parameters(script)
    schema = starter_schema(declared)

    assert declared == {"bore_d": 25.0, "teeth": 20, "keyway": False, "thread": "M6"}
    assert [spec["type"] for spec in schema] == ["length", "integer", "boolean", "choice"]
    parse_schema(schema)
    assert schema_mismatches(declared, schema) == []
    assert schema_mismatches(declared, schema[:1]) == [
        "the script declares 'teeth', which the schema does not offer",
        "the script declares 'keyway', which the schema does not offer",
        "the script declares 'thread', which the schema does not offer",
    ]
    assert declared_parameters("def (") == {}
