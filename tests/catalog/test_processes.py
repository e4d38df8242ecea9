"""A revision marks the processes it can be made by besides its primary one (issue #16
point 5): checked against catalog.Process when it is created or edited."""

import pytest

from catalog.models import PartFamily, PartRevision, alternative_processes_problem
from catalog.services import revision_create
from microfactory.errors import DomainError
from tests.builders import BLOCK_SCHEMA, BLOCK_SCRIPT, make_material


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ([], None),
        (["cnc_mill", "laser"], None),
        (["welding"], "unknown process 'welding'; choose from fdm, cnc_mill, laser"),
        (["fdm"], "fdm is the primary process already"),
        (["laser", "laser"], "a process is listed twice"),
        ("laser", 'give a list of processes, e.g. ["cnc_mill", "laser"]'),
        ([3], "unknown process '3'; choose from fdm, cnc_mill, laser"),
    ],
)
def test_alternative_processes_are_known_processes_other_than_the_primary(values, problem):
    assert alternative_processes_problem("fdm", values) == problem


@pytest.mark.django_db
def test_a_revision_keeps_its_alternatives_and_refuses_bad_ones():
    family = PartFamily.objects.create(slug="cover", name="Cover")
    common = {
        "family": family,
        "script": BLOCK_SCRIPT,
        "parameter_schema": BLOCK_SCHEMA,
        "materials": [make_material()],
    }
    revision = revision_create(**common, alternative_processes=["laser", "cnc_mill"])
    assert revision.allowed_processes == ["fdm", "laser", "cnc_mill"]
    with pytest.raises(DomainError, match="alternative processes: unknown process 'welding'"):
        revision_create(**common, alternative_processes=["welding"])
    assert PartRevision.objects.count() == 1
    # Values written around the services (an old row, the shell) never offer a bad route.
    revision.alternative_processes = ["welding", "fdm", "laser"]
    assert revision.allowed_processes == ["fdm", "laser"]
