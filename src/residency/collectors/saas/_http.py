"""The one HTTP client the SaaS collectors share: JSON over `urllib.request`, bounded.

Every answer that is not a 2xx JSON document raises: an `HttpError` carrying the status, the
vendor's own error text (each vendor nests it differently) and `Retry-After`; a timeout or a
reset raises what `urllib` raises; a body that is not JSON raises `json.JSONDecodeError`.
The collectors turn each into a `CoverageGap`, so a refused or unreachable tenant is never an
empty result. 429 and 5xx answers are retried a bounded number of times.

Secrets never pass through here as text a caller could print: headers are built by the caller
and `HttpError` keeps only the status and the vendor's message, which the collector redacts
(and scrubs of the tenant's own token) before it becomes a gap reason.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_BODY = 4 * 1024 * 1024  # bytes: an account-details answer is a few hundred
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class HttpError(Exception):
    """A non-2xx answer: status, the vendor's error text, and `Retry-After` if sent."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}" if message else f"HTTP {status}")
        self.status = status
        self.message = message
        self.retry_after = retry_after


class AnswerTooLargeError(Exception):
    """The answer is larger than `MAX_BODY`: not the small document the API documents."""


def _no_redirects() -> urllib.request.OpenerDirector:
    """An opener that does not follow redirects: a 3xx to another host must not receive the
    Authorization header, and a tenant that redirects is not answering its API."""

    class _Refuse(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(_Refuse())


@dataclass
class HttpClient:
    """JSON requests with a timeout, bounded retries on 429/5xx and a size limit."""

    timeout: float = 10.0
    retries: int = 2
    max_wait: float = 10.0  # seconds: the longest Retry-After honoured before giving up
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.time, repr=False)
    _opener: urllib.request.OpenerDirector = field(default_factory=_no_redirects, repr=False)

    def get(self, url: str, headers: Mapping[str, str]) -> Any:
        return self.request("GET", url, headers)

    def post(self, url: str, headers: Mapping[str, str], body: Any) -> Any:
        return self.request("POST", url, headers, body)

    def get_bytes(self, url: str, headers: Mapping[str, str] | None = None) -> bytes:
        """The raw answer (a published document, e.g. a sub-processor list in YAML)."""
        return self._retrying("GET", url, headers or {}, None)

    def request(self, method: str, url: str, headers: Mapping[str, str],
                body: Any = None) -> Any:
        """The parsed JSON answer; raises HttpError, OSError (timeouts, resets) or
        JSONDecodeError."""
        data = json.dumps(body).encode() if body is not None else None
        return json.loads(self._retrying(method, url, headers, data).decode("utf-8"))

    def _retrying(self, method: str, url: str, headers: Mapping[str, str],
                  data: bytes | None) -> bytes:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"not an http(s) URL: {url[:80]!r}")
        attempt = 0
        while True:
            try:
                return self._once(method, url, headers, data)
            except HttpError as exc:
                if exc.status not in RETRY_STATUSES or attempt >= self.retries:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else 2.0 ** attempt
                if wait > self.max_wait:
                    raise
                self.sleep(max(0.0, wait))
                attempt += 1

    def _once(self, method: str, url: str, headers: Mapping[str, str],
              data: bytes | None) -> bytes:
        req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - checked above
        req.add_header("Accept", "application/json")
        req.add_header("User-Agent", "residency (read-only location scan)")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for name, value in headers.items():
            req.add_header(name, value)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read(MAX_BODY + 1)
        except urllib.error.HTTPError as exc:
            with exc:
                raw = exc.read(MAX_BODY + 1) if exc.fp is not None else b""
            raise HttpError(exc.code, error_text(raw),
                            _retry_after(exc.headers, self.clock())) from None
        if len(raw) > MAX_BODY:
            raise AnswerTooLargeError(f"answer larger than {MAX_BODY} bytes")
        return bytes(raw)


def _retry_after(headers: Any, now: float) -> float | None:
    """Seconds to wait, from the vendor's rate-limit headers: `Retry-After` (seconds;
    Freshdesk, Atlassian), else `X-RateLimit-Reset` as a UNIX time (Intercom) or an ISO 8601
    time (Atlassian). None when neither is sent or readable (an HTTP date: no hint)."""
    if headers is None:
        return None
    value = headers.get("Retry-After")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    reset = headers.get("X-RateLimit-Reset")
    if reset is None:
        return None
    try:
        at = float(reset)
    except ValueError:
        try:
            at = dt.datetime.fromisoformat(reset.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return max(0.0, at - now) if at > 1e9 else None


def error_text(raw: bytes) -> str:
    """The vendor's own error message from an error body, whatever the vendor's nesting:
    `{"message"}` (Freshdesk, HubSpot), `{"errors": [{"message"}]}` (Intercom),
    `[{"message", "errorCode"}]` (Salesforce), `{"errors": [{"title", "detail"}]}`
    (Atlassian). A body that is not JSON (a proxy's HTML page) gives no text."""
    try:
        doc = json.loads(raw.decode("utf-8")) if raw else None
    except (ValueError, UnicodeDecodeError):
        return ""
    item: Any = doc
    if isinstance(item, dict) and isinstance(item.get("errors"), list) and item["errors"]:
        item = item["errors"][0]
    elif isinstance(item, list) and item:
        item = item[0]
    if not isinstance(item, dict):
        return ""
    code = item.get("errorCode") or item.get("code") or item.get("category")
    text = item.get("message") or item.get("detail") or item.get("title") or ""
    parts = [str(p) for p in (code, text) if p]
    return ": ".join(parts)[:300]
