from decimal import Decimal

import pytest
from django.core.management import call_command

from catalog.models import PartFamily
from catalog.parts import DEMO_PARTS
from orders.models import Membership, Team

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


def test_seed_demo_puts_the_requester_in_a_team_whose_large_orders_wait_for_approval() -> None:
    call_command("seed_demo", "--no-order", verbosity=0)
    call_command("seed_demo", "--no-order", verbosity=0)

    requester = Membership.objects.select_related("team").get(user__username="requester")
    assert requester.team.name == "Line maintenance"
    assert requester.team.approval_threshold == Decimal("250.00")
    approver = Membership.objects.get(user__username="approver")
    assert approver.can_approve and approver.organisation_id == requester.organisation_id
    assert Team.objects.count() == 1
