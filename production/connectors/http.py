"""HTTP with bounded retries for the network connectors (httpx)."""

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from production.connectors.base import AuthFailed, ConnectorError, Unexpected, Unreachable

logger = logging.getLogger(__name__)


class HttpClient:
    """Requests to one machine: `attempts` tries, `backoff_s` doubling between them."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str],
        timeout_s: float,
        attempts: int,
        backoff_s: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = headers
        self.timeout_s = timeout_s
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.sleep = sleep

    def request(
        self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs: Any
    ) -> httpx.Response:
        """The response, once its status is one of `expect`; else ConnectorError after retries."""
        url = f"{self.base_url}{path}"
        error: ConnectorError = Unreachable(f"{method} {path}: not tried")
        for attempt in range(self.attempts):
            try:
                response = httpx.request(
                    method, url, headers=self.headers, timeout=self.timeout_s, **kwargs
                )
            except httpx.TimeoutException:
                error = Unreachable(f"{method} {path}: no answer within {self.timeout_s:g} s")
            except httpx.HTTPError as failure:
                error = Unreachable(f"{method} {path}: {type(failure).__name__}: {failure}")
            else:
                if response.status_code in expect:
                    return response
                error = self._error_for(method, path, response)
            if attempt + 1 < self.attempts:
                delay = self.backoff_s * 2**attempt
                logger.info("%s; retrying in %.1f s", error, delay)
                self.sleep(delay)
        raise error

    def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            raise Unexpected(f"{method} {path}: not JSON: {response.text[:200]!r}") from None
        if not isinstance(body, dict):
            raise Unexpected(f"{method} {path}: expected a JSON object, got {body!r:.200}")
        return body

    @staticmethod
    def _error_for(method: str, path: str, response: httpx.Response) -> ConnectorError:
        code = response.status_code
        if code in (401, 403):
            return AuthFailed(f"{method} {path}: HTTP {code}: the API key was refused")
        if code >= 500:
            return Unreachable(f"{method} {path}: HTTP {code}: {response.text[:200]}")
        return Unexpected(f"{method} {path}: HTTP {code}: {response.text[:200]}")
