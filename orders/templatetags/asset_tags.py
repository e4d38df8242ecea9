"""{% editable_assets as assets %}: the assets the signed-in user may put spare parts on, for
the "save on an asset" forms of the part and order pages (orders.asset_views)."""

from typing import Any

from django import template

from orders.assets import asset_can_edit, assets_for
from orders.models import Asset, Membership

register = template.Library()


@register.simple_tag(takes_context=True)
def editable_assets(context: dict[str, Any]) -> list[Asset]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    membership = Membership.objects.filter(user=user).select_related("team").first()
    return [a for a in assets_for(user).order_by("tag") if asset_can_edit(membership, a)]
