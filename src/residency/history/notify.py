"""POST a JSON summary to a webhook (Slack-compatible or generic), with a hard timeout."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from residency.errors import ResidencyError

TIMEOUT_S = 5.0


class NotifyError(ResidencyError):
    """The webhook could not be reached or refused the payload."""


def post_json(url: str, payload: dict[str, Any], timeout: float = TIMEOUT_S) -> int:
    """POST `payload`; return the HTTP status or raise NotifyError (one line)."""
    if not url.startswith(("http://", "https://")):
        raise NotifyError(f"{_safe(url)}: webhook URL must be http:// or https://")
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=body, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "residency"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        raise NotifyError(f"{_safe(url)}: webhook answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NotifyError(f"{_safe(url)}: webhook unreachable: {reason}") from None


def _safe(url: str) -> str:
    """Scheme and host only: webhook paths (Slack) are secrets."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rpartition("@")[2]
    return f"{scheme}://{host}/…" if rest else url
