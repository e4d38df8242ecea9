"""Builders for ordering tests (teams, approvers), beside tests/builders.py."""

from decimal import Decimal

from django.contrib.auth.models import User

from orders.models import Membership, Organisation, Team


def make_team(
    organisation: Organisation, *, slug: str = "maintenance", threshold: str | None = "10.00"
) -> Team:
    return Team.objects.create(
        organisation=organisation,
        name=slug.title(),
        slug=slug,
        approval_threshold=Decimal(threshold) if threshold is not None else None,
    )


def join_team(user: User, team: Team) -> User:
    Membership.objects.filter(user=user, organisation=team.organisation).update(team=team)
    return user
