import pytest
from django.core.management import call_command

from catalog.models import PartFamily
from catalog.parts import DEMO_PARTS

pytestmark = pytest.mark.django_db


def test_seed_demo_loads_the_whole_library_once_with_instructions_and_qc_checks() -> None:
    call_command("seed_demo", "--no-order", verbosity=0)
    call_command("seed_demo", "--no-order", verbosity=0)

    families = PartFamily.objects.prefetch_related("revisions")
    assert sorted(f.slug for f in families) == sorted(p.slug.replace("_", "-") for p in DEMO_PARTS)
    for family in families:
        (revision,) = family.revisions.all()
        assert revision.is_published
        assert revision.work_instructions and revision.qc_checks
        assert family.category and family.tag_list
    assert PartFamily.objects.get(slug="spur-gear").current_revision().materials.count() == 2
