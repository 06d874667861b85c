"""How a collector's unit of work fails: into a one-line, redacted gap reason, never a crash.

Every unit (an account, project or subscription × region × service, a per-resource read)
passes one guard that turns *any* exception into a reason: an SDK error, a connection reset,
a timeout, a parser error, or a KeyError/TypeError from an answer that lacks what the API
promises. The reason names the exception type and the first line of its message (parsers
put the raw body after it), goes through `residency.redact.one_line` and is kept short.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from xml.etree.ElementTree import ParseError

from residency.redact import one_line

MAX_REASON = 300

Describe = Callable[[BaseException], str | None]
"""A provider's own wording for the errors it knows (an AWS error code, an HTTP status);
None lets the generic wording below speak."""


def reason(exc: BaseException, describe: Describe | None = None,
           scrub: Callable[[str], str] | None = None) -> str:
    """One redacted line for a gap; `scrub` removes secrets only the caller knows first."""
    text = (describe(exc) if describe is not None else None) or generic(exc)
    if scrub is not None:
        text = scrub(text)
    return shorten(one_line(text))


def generic(exc: BaseException, _depth: int = 0) -> str:
    """The exception type and the first line of its message; a missing key says which; an
    SDK error without a message speaks through its cause."""
    name = type(exc).__name__
    if isinstance(exc, KeyError):
        field = exc.args[0] if exc.args else "?"
        return f"answer lacks a required field ({name}: {field!r})"
    message = first_line(exc)
    cause = exc.__cause__ or exc.__context__
    if not message and cause is not None and _depth < 3:
        return f"{name} ({generic(cause, _depth + 1)})"
    if isinstance(exc, json.JSONDecodeError):  # requests' own subclasses it too
        return f"answer is not well-formed JSON ({name}: {message})"
    if isinstance(exc, ParseError):  # botocore re-parses some S3 answers itself
        return f"answer is not well-formed XML ({name}: {message})"
    if isinstance(exc, (TypeError, AttributeError, IndexError)):
        return f"answer not in the documented shape ({name}: {message})"
    return f"{name}: {message}" if message else name


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else ""


def shorten(text: str, limit: int = MAX_REASON) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def kept_note(count: int, what: str) -> str:
    """Appended to a scope's reason when part of it was read before the error."""
    return f"; {count} {what}(s) read before the error are kept" if count else ""
