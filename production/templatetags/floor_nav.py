"""{% works_on_floor as on_floor %}: whether the navigation shows the Floor and Station links;
{% manages_floor as manager %}: the Dashboard and What-if links.

Decided once, when the user logs in (`remember_at_login`, connected in apps.py), and kept in
the session: the pages' query budgets do not grow by it. A role given or taken during a session
shows in the navigation from the next login; the station itself checks on every request.
"""

from typing import Any

from django import template
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from production import tenancy

register = template.Library()

SESSION_KEY = "works_on_floor"
MANAGER_KEY = "manages_floor"


def remember_at_login(
    sender: object, request: HttpRequest, user: AbstractBaseUser, **_: Any
) -> None:
    """user_logged_in: note in the new session whether the user works on a factory floor."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = tenancy.is_operator(user)
        request.session[MANAGER_KEY] = tenancy.is_manager(user)


@register.simple_tag(takes_context=True)
def works_on_floor(context: dict[str, Any]) -> bool:
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return False
    known = getattr(request, "works_on_floor", None)  # a station page checked it already
    if known is None:
        known = request.session.get(SESSION_KEY)
    if not isinstance(known, bool):  # a session from before the floor view: ask once
        known = tenancy.is_operator(user)
        request.session[SESSION_KEY] = known
    return known


@register.simple_tag(takes_context=True)
def manages_floor(context: dict[str, Any]) -> bool:
    """Whether the navigation shows the manager's pages (dashboard, what-if): decided at login
    like works_on_floor; the pages themselves check on every request."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return False
    known = request.session.get(MANAGER_KEY)
    if not isinstance(known, bool):  # a session from before the dashboard: ask once
        known = tenancy.is_manager(user)
        request.session[MANAGER_KEY] = known
    return known
