"""`user|works_on_floor`: whether the navigation shows the Floor and Station links."""

from django import template

from production import tenancy

register = template.Library()


@register.filter
def works_on_floor(user: tenancy.User) -> bool:
    """Staff, or an operator or manager of a factory (tenancy.is_operator): one query per
    request at most, kept on the user object for the rest of it."""
    if not user.is_authenticated:
        return False
    known: bool | None = getattr(user, "_works_on_floor", None)
    if known is None:
        known = tenancy.is_operator(user)
        setattr(user, "_works_on_floor", known)  # noqa: B010 (not a field of the user model)
    return known
