"""{% editable_assets as assets %}: the assets the signed-in user may put spare parts on, for
the "save on an asset" forms of the part and order pages (orders.asset_views). Read once a
request: an order page asks for each of its lines."""

from typing import Any

from django import template

from orders.assets import assets_editable_by
from orders.models import Asset
from orders.views import _membership

register = template.Library()


@register.simple_tag(takes_context=True)
def editable_assets(context: dict[str, Any]) -> list[Asset]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return []
    if not hasattr(request, "mf_editable_assets"):
        request.mf_editable_assets = list(assets_editable_by(_membership(request)).order_by("tag"))
    assets: list[Asset] = request.mf_editable_assets
    return assets
