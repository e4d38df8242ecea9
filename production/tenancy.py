"""Who works on which factory floor: the reads every station page and operator API uses.

A factory is an organisation that operates sites (Site.operator). Its members with the
operator or manager role work on the machines of its sites and on the jobs at those
machines, whichever customer ordered them. Customer organisations see their own orders
through orders (Order.objects.for_user), never through these.

Where a job belongs:
- at a machine (routed, dispatched, running, paused, awaiting QC, done, scrapped): the site
  of that machine, `job.machine.site`;
- not at a machine yet, and remaking a job (a scrap's or a failed run's replacement): the
  site of the job it remakes, so the operator who scrapped parts can follow their remake
  until it is routed (then it belongs to wherever it was routed);
- any other job not at a machine (still in the pipeline, rejected, failed before routing):
  staff only. No factory has anything to do with it yet, and showing it to every factory
  with a capable machine would show each customer's orders to the whole network.
A site with no operator is staff's alone. Staff (is_staff) see every site, machine and job.

Out of scope is "not found": the views look objects up in these querysets, so a job of
another factory answers 404 exactly as a job that does not exist.
"""

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet

from orders.models import Membership
from production.models import Job, Machine, Plate, Site, Spool

User = AbstractBaseUser | AnonymousUser

# The roles of a factory organisation that work on its floor.
FLOOR_ROLES = frozenset({Membership.Role.OPERATOR, Membership.Role.MANAGER})
# The role that sees what the factory's work costs and earns (production.costing); operators
# see no prices.
MANAGER_ROLES = frozenset({Membership.Role.MANAGER})


def _is_staff(user: User) -> bool:
    return bool(user.is_authenticated and getattr(user, "is_staff", False))


def sites_for_operator(user: User, *, roles: frozenset[str] = FLOOR_ROLES) -> QuerySet[Site]:
    """The sites whose machines and jobs the user works on: all for staff, the sites of the
    factories where the user has one of `roles`, none for anyone else."""
    if _is_staff(user):
        return Site.objects.all()
    if not user.is_authenticated:
        return Site.objects.none()
    # One filter() call: the membership that matches the user is the one whose role counts.
    return Site.objects.filter(
        operator__memberships__user_id=user.pk, operator__memberships__role__in=roles
    )


def machines_for_operator(user: User, *, roles: frozenset[str] = FLOOR_ROLES) -> QuerySet[Machine]:
    """The machines at the user's sites (sites_for_operator)."""
    if _is_staff(user):
        return Machine.objects.all()
    return Machine.objects.filter(site__in=sites_for_operator(user, roles=roles))


def spools_for_operator(user: User) -> QuerySet[Spool]:
    """The spools at the user's sites (sites_for_operator): a spool belongs to its site."""
    if _is_staff(user):
        return Spool.objects.all()
    return Spool.objects.filter(site__in=sites_for_operator(user))


def jobs_for_operator(user: User, *, roles: frozenset[str] = FLOOR_ROLES) -> QuerySet[Job]:
    """The jobs the user may see and act on at the station (see the module's docstring); with
    `roles`, only those at the sites of factories where the user has one of them."""
    if _is_staff(user):
        return Job.objects.all()
    sites = sites_for_operator(user, roles=roles)
    return Job.objects.filter(
        Q(machine__site__in=sites) | Q(machine__isnull=True, replaces__machine__site__in=sites)
    )


def is_manager(user: User) -> bool:
    """Staff, or a manager of a factory that operates a site: who sees costs and margins."""
    return _is_staff(user) or sites_for_operator(user, roles=MANAGER_ROLES).exists()


def is_operator(user: User) -> bool:
    """Staff, or an operator or manager of a factory that operates a site: the users the
    station lets in at all (everyone else gets 403 before anything is looked up)."""
    return _is_staff(user) or sites_for_operator(user).exists()


def plates_for_operator(user: User) -> QuerySet[Plate]:
    """The plates the user may see and act on at the station: those routed to a machine at
    the sites of their factory (staff: all, routed or not)."""
    if _is_staff(user):
        return Plate.objects.all()
    return Plate.objects.filter(machine__site__in=sites_for_operator(user))
