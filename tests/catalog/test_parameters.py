import pytest

from catalog.parameters import (
    ParameterError,
    SchemaError,
    canonical,
    describe,
    parameters_hash,
    parse_rules,
    parse_schema,
    validate_parameters,
)

SCHEMA = parse_schema(
    [
        {
            "name": "bore_d",
            "label": "Bore",
            "type": "length",
            "default": 25,
            "min": 3,
            "max": 80,
            "step": 0.1,
        },
        {
            "name": "outer_d",
            "label": "Outer",
            "type": "length",
            "default": 45,
            "min": 10,
            "max": 120,
        },
        {"name": "screws", "type": "integer", "default": 1, "min": 0, "max": 4},
        {"name": "finish", "type": "choice", "default": "plain", "choices": ["plain", "chamfered"]},
        {"name": "split", "type": "boolean", "default": False},
    ]
)
RULES = parse_rules(
    [{"rule": "bore_d <= outer_d - 4", "message": "outer_d must exceed bore_d by 4 mm"}]
)
GOOD = {"bore_d": 25, "outer_d": 45, "screws": 1, "finish": "plain", "split": False}


def test_it_coerces_form_strings_to_canonical_values():
    values = validate_parameters(
        SCHEMA,
        {"bore_d": "25.0", "outer_d": "45", "screws": "2", "finish": "chamfered", "split": "on"},
        rules=RULES,
    )
    assert values == {
        "bore_d": 25,
        "finish": "chamfered",
        "outer_d": 45,
        "screws": 2,
        "split": True,
    }
    assert list(values) == sorted(values)


def test_equal_configurations_hash_equally():
    a = validate_parameters(SCHEMA, {**GOOD, "bore_d": "25.00"})
    b = validate_parameters(SCHEMA, {**GOOD, "bore_d": 25})
    assert parameters_hash(a) == parameters_hash(b)


def test_out_of_range_values_name_the_field_and_the_limit():
    with pytest.raises(ParameterError) as caught:
        validate_parameters(SCHEMA, {**GOOD, "bore_d": 2})
    assert caught.value.errors == {"bore_d": ["Bore must be at least 3 mm (got 2 mm)"]}


def test_missing_unknown_and_non_numeric_parameters_are_all_reported():
    with pytest.raises(ParameterError) as caught:
        validate_parameters(SCHEMA, {"bore_d": "abc", "colour": "red", "screws": 1.5})
    errors = caught.value.errors
    assert errors["bore_d"] == ["Bore must be a number"]
    assert errors["colour"] == ["'colour' is not a parameter of this part"]
    assert errors["screws"] == ["Screws must be a whole number"]
    assert "Outer is required" in errors["outer_d"]


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity", True, None, [1], {"a": 1}])
def test_numbers_must_be_finite_numbers(bad):
    with pytest.raises(ParameterError) as caught:
        validate_parameters(SCHEMA, {**GOOD, "outer_d": bad})
    assert "outer_d" in caught.value.errors


def test_steps_are_enforced_from_the_minimum():
    with pytest.raises(ParameterError) as caught:
        validate_parameters(SCHEMA, {**GOOD, "bore_d": 25.05})
    assert caught.value.errors["bore_d"] == ["Bore must be in steps of 0.1 mm"]


def test_a_cross_parameter_rule_names_every_field_it_mentions():
    with pytest.raises(ParameterError) as caught:
        validate_parameters(SCHEMA, {**GOOD, "bore_d": 44}, rules=RULES)
    assert caught.value.errors == {
        "bore_d": ["Outer must exceed bore by 4 mm (bore 44 mm must be at most outer - 4 = 41 mm)"],
        "outer_d": [
            "Outer must exceed bore by 4 mm (bore 44 mm must be at most outer - 4 = 41 mm)"
        ],
    }


def test_defaults_fill_missing_values_when_asked():
    assert validate_parameters(SCHEMA, {"bore_d": 30}, fill_defaults=True)["outer_d"] == 45


def test_choices_and_booleans_refuse_other_values():
    with pytest.raises(ParameterError) as caught:
        validate_parameters(SCHEMA, {**GOOD, "finish": "gold", "split": "maybe"})
    assert caught.value.errors["finish"] == ["Finish must be one of plain, chamfered (got 'gold')"]
    assert caught.value.errors["split"] == ["Split must be true or false"]


def test_canonical_numbers_drop_float_noise():
    assert canonical({"bore_d": 0.1 + 0.2}, SCHEMA) == {"bore_d": 0.3}


@pytest.mark.parametrize(
    "schema, message",
    [
        ("nope", "must be a list"),
        ([{"name": "1x", "type": "length", "default": 1}], "identifier"),
        ([{"name": "a", "type": "colour", "default": 1}], "type must be one of"),
        ([{"name": "a", "type": "length", "default": 5, "min": 10}], "defaults do not validate"),
        ([{"name": "a", "type": "choice", "default": "x"}], "needs choices"),
        (
            [
                {"name": "a", "type": "length", "default": 1},
                {"name": "a", "type": "length", "default": 1},
            ],
            "unique",
        ),
    ],
)
def test_malformed_schemas_are_refused(schema, message):
    with pytest.raises(SchemaError, match=message):
        parse_schema(schema)


LABELLED = parse_schema(
    [
        {"name": "bore_d", "label": "Bore diameter", "type": "length", "default": 25,
         "min": 3, "max": 80},
        {"name": "outer_d", "label": "Outer diameter", "type": "length", "default": 45,
         "min": 11, "max": 120},
        {"name": "teeth", "label": "GT2 teeth", "type": "integer", "default": 20, "min": 10,
         "max": 60},
        {"name": "flanged", "label": "Flange", "type": "boolean", "default": False},
    ]
)  # fmt: skip


def test_a_rule_is_explained_in_labels_and_units_never_in_names() -> None:
    rules = parse_rules(
        [{"rule": "outer_d - bore_d >= 8", "message": "make outer_d at least bore_d + 8 mm"}]
    )
    with pytest.raises(ParameterError) as caught:
        validate_parameters(
            LABELLED, {"bore_d": 40, "outer_d": 44}, rules=rules, fill_defaults=True
        )
    (message,) = set(m for messages in caught.value.errors.values() for m in messages)
    assert message == (
        "make outer diameter at least bore diameter + 8 mm "
        "(outer diameter - bore diameter = 4 mm must be at least 8 mm)"
    )
    assert str(caught.value) == message  # said once, though filed under both fields


def test_a_constant_takes_the_unit_of_what_it_is_compared_with_and_capitals_stay() -> None:
    rules = parse_rules([{"rule": "bore_d < 30"}, {"rule": "teeth >= 2 * 15"}])
    with pytest.raises(ParameterError) as caught:
        validate_parameters(LABELLED, {"bore_d": 40, "teeth": 20}, rules=rules, fill_defaults=True)
    assert caught.value.errors["bore_d"] == ["Bore diameter 40 mm must be less than 30 mm"]
    assert caught.value.errors["teeth"] == ["GT2 teeth 20 must be at least 2 * 15 = 30"]


def test_a_configuration_is_described_by_labels_and_units() -> None:
    assert describe(LABELLED, {"bore_d": 25, "flanged": True, "teeth": 20, "old": 1}) == [
        ("Bore diameter", "25 mm"),
        ("GT2 teeth", "20"),
        ("Flange", "yes"),
        ("old", "1"),
    ]


def test_a_parameter_without_a_label_reads_as_words() -> None:
    (spec,) = parse_schema([{"name": "hole_d", "type": "length", "default": 5}])
    assert spec.label == "Hole d"
