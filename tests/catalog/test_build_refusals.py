"""What a revision must be to publish, and what a build refuses before the sandbox runs:
parameters outside the revision's schema or against its own rules, on every path that
builds (preview, the worker's build step, make_part)."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from catalog.models import PartFamily, PartPreview
from catalog.parameters import (
    ParameterError,
    check_publishable,
    parse_rules,
    parse_schema,
    validate_parameters,
)
from catalog.parts import DEMO_PARTS
from catalog.previews import preview_build
from catalog.services import revision_create, revision_publish
from microfactory.errors import DomainError
from production.models import Job
from tests.builders import make_machine, make_material, make_order, make_part
from tests.production.test_runner import run_to_the_end

COLLAR = next(part for part in DEMO_PARTS if part.slug == "shaft_collar")
# The configuration the probe had built and dispatched: a bore wider than the collar.
BAD_COLLAR = {"bore_d": 30, "outer_d": 12, "width": 14, "screw_hole_d": 5}


def test_every_demo_part_has_a_range_on_every_number() -> None:
    for part in DEMO_PARTS:
        check_publishable(parse_schema(part.schema))


def test_a_broken_comparison_rule_names_the_values_it_compared() -> None:
    specs = parse_schema(COLLAR.schema)
    rules = parse_rules([{"rule": "bore_d < outer_d - 4"}])

    with pytest.raises(ParameterError) as refusal:
        validate_parameters(specs, {**BAD_COLLAR, "outer_d": 10 + 1}, rules=rules)

    assert refusal.value.errors["bore_d"] == [
        "Bore diameter 30 mm must be less than outer diameter - 4 = 7 mm"
    ]


@pytest.mark.django_db
def test_a_revision_with_a_number_without_range_cannot_be_published() -> None:
    family = PartFamily.objects.create(slug="open", name="Open")
    revision = revision_create(
        family=family,
        script="import cadquery as cq\nt = 2\nshow_object(cq.Workplane().box(10, 10, t))\n",
        parameter_schema=[
            {"name": "t", "type": "length", "default": 2, "min": 1},
            {"name": "n", "type": "integer", "default": 2, "min": 1, "max": 3},
        ],
        materials=[make_material()],
    )

    with pytest.raises(DomainError) as refusal:
        revision_publish(revision=revision)

    assert "needs a range (min and max) before publishing; missing on t" in str(refusal.value)
    revision.refresh_from_db()
    assert not revision.is_published


@pytest.mark.django_db
def test_a_preview_of_a_collar_against_its_rules_fails_with_the_reason(user) -> None:
    family = PartFamily.objects.create(slug=COLLAR.slug, name=COLLAR.name)
    revision = revision_create(
        family=family,
        script=COLLAR.script,
        parameter_schema=COLLAR.schema,
        rules=COLLAR.rules,
        materials=[make_material()],
    )
    preview = PartPreview.objects.create(
        key="k" * 64,
        revision=revision,
        parameters=BAD_COLLAR,
        parameters_hash="0" * 64,
        engine="test",
        requested_by=user,
        queued_at=timezone.now(),
    )

    assert preview_build(preview_id=preview.pk) == PartPreview.Status.FAILED

    preview.refresh_from_db()
    assert preview.message.startswith(
        "the parameters break the revision's rules: the wall must be at least 4 mm thick: "
        "make outer diameter at least bore diameter + 8 mm"
    )
    assert "(outer diameter - bore diameter = -18 mm must be at least 8 mm)" in preview.message
    assert not preview.stl


@pytest.mark.django_db
def test_the_build_step_rejects_a_job_whose_parameters_break_the_rules(user) -> None:
    make_part("block")  # rule: hole_d <= width - 2
    make_machine()
    line = make_order(user=user).lines.get()
    # A line stored before the rule held, or written around intake: the build must refuse it.
    type(line).objects.filter(pk=line.pk).update(
        parameters={"width": 20, "height": 10, "hole_d": 30}
    )

    job = run_to_the_end(line.jobs.get().pk)

    assert job.status == Job.Status.REJECTED
    assert job.reason.startswith("the parameters break the revision's rules: ")
    assert job.reason.endswith(
        ": the hole must leave 1 mm of wall (hole diameter 30 mm must be at most width - 2 = 18 mm)"
    )
    assert job.reason.count("the hole must leave") == 1
    assert not job.job_artifacts.exists()


@pytest.mark.django_db
def test_make_part_refuses_parameters_that_break_the_rules_with_exit_1(tmp_path) -> None:
    make_part("block")
    make_machine()

    with pytest.raises(CommandError) as refusal:
        call_command(
            "make_part", "block", "--param", "hole_d=30", "--out", str(tmp_path),
            stdout=io.StringIO(),
        )  # fmt: skip

    assert refusal.value.returncode == 1
    assert "hole diameter 30 mm must be at most width - 2 = 18 mm" in str(refusal.value)
