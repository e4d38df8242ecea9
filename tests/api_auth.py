"""How a test speaks to the API as a user or a machine, in one place: a change of the user
token scheme (hashed tokens, MFA) changes these two functions, not the tests that use them."""

from django.contrib.auth.models import User

from microfactory.accounts.services import api_token_create
from production import machines
from production.models import Machine


def user_api_headers(user: User) -> dict[str, str]:
    """The headers of an API request made with the user's own API token."""
    _row, token = api_token_create(user=user, name="tests", expires_in=None)
    return {"Authorization": f"Token {token}"}


def machine_api_headers(machine: Machine) -> dict[str, str]:
    """The headers of a telemetry report made with a new token of the machine's."""
    return {"Authorization": f"Machine {machines.machine_token_issue(machine=machine)}"}
