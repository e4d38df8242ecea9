"""The signed-in user's membership of an organisation, read once a request.

A page, its delivery site and its "save on an asset" forms all ask for it; the request keeps
what was read (`mf_membership`, `mf_editable_assets`), here and nowhere else.
"""

from django.contrib.auth.models import User
from django.http import HttpRequest

from orders.assets import assets_editable_by
from orders.models import Asset, Membership


def request_membership(request: HttpRequest) -> Membership | None:
    """The signed-in user's membership with its organisation and team (None: signed out, or
    a member of no organisation)."""
    if not hasattr(request, "mf_membership"):
        user = request.user
        request.mf_membership = (  # type: ignore[attr-defined]
            Membership.objects.filter(user=user).select_related("organisation", "team").first()
            if isinstance(user, User)
            else None
        )
    membership: Membership | None = request.mf_membership  # type: ignore[attr-defined]
    return membership


def request_editable_assets(request: HttpRequest) -> list[Asset]:
    """The assets the signed-in user may put spare parts on, by tag: an order page asks for
    each of its lines."""
    if not hasattr(request, "mf_editable_assets"):
        request.mf_editable_assets = list(  # type: ignore[attr-defined]
            assets_editable_by(request_membership(request)).order_by("tag")
        )
    assets: list[Asset] = request.mf_editable_assets  # type: ignore[attr-defined]
    return assets
