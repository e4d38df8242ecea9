"""{% editable_assets as assets %}: the assets the signed-in user may put spare parts on, for
the "save on an asset" forms of the part and order pages (orders.asset_views)."""

from typing import Any

from django import template

from orders.membership import request_editable_assets
from orders.models import Asset

register = template.Library()


@register.simple_tag(takes_context=True)
def editable_assets(context: dict[str, Any]) -> list[Asset]:
    request = context.get("request")
    if request is None:
        return []
    return request_editable_assets(request)
