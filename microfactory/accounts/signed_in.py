"""The user of a page behind @login_required (or the station's operator_required), narrowed
from `User | AnonymousUser` for the code that acts as them."""

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest


def signed_in_user(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):  # the decorator has sent anonymous visitors to sign in
        raise PermissionDenied("sign in first")
    return user
