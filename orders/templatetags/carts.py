"""{% cart_size %}: how many lines the signed-in user's cart holds (the navigation's count)."""

from typing import Any

from django import template

from orders.carts import cart_size as lines_in_cart

register = template.Library()


@register.simple_tag(takes_context=True)
def cart_size(context: dict[str, Any]) -> int:
    request = context.get("request")
    return lines_in_cart(user=getattr(request, "user", None))
