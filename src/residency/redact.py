"""One redaction filter for everything that leaves the process: stderr, logs, reports, history.

A credential can reach a message by many roads (an SDK error that quotes a response body, a
database URL with a password, a bearer header echoed by a proxy). Rather than trusting each
road, every message that is printed, logged, reported or recorded passes `redact`, which
replaces anything shaped like a secret with `[REDACTED]`.
"""

from __future__ import annotations

import logging
import re

MASK = "[REDACTED]"

# (pattern, replacement); each keeps the label so a reader sees *what* was removed
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # AWS access key ids (long-term AKIA, temporary ASIA, and the other documented prefixes)
    (re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)"
                r"[A-Z0-9]{12,}\b"), MASK),
    # XML elements of STS / IAM answers: <SecretAccessKey>…</SecretAccessKey>
    (re.compile(r"(<(SecretAccessKey|SessionToken|SecurityToken|AccessKeyId|Password|"
                r"ClientSecret|Token)>)[^<]*(</\2>|$)", re.IGNORECASE | re.MULTILINE),
     rf"\1{MASK}\3"),
    # JSON / Python-repr / key=value spellings: "SecretAccessKey": "…", secret=…, token: …
    (re.compile(r"""(?ix)
        (["']?(?:aws_)?(?:secret_?access_?key|session_?token|security_?token|access_?token|
              refresh_?token|id_?token|client_?secret|api_?key|password|passwd|pwd|
              secret|token|sig|signature|x-amz-security-token|x-amz-signature|
              credential)["']?\s*[:=]\s*)
        (["']?)([^"'\s,;&}<>)]+)"""), rf"\1\2{MASK}"),
    # Authorization headers and bearer tokens
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {MASK}"),
    (re.compile(r"(?i)(authorization\s*[:=]\s*)[^\r\n,;]+"), rf"\1{MASK}"),
    # user:password@ in URLs (postgresql://u:p@host, https://u:p@host)
    (re.compile(r"([a-z][a-z0-9+.-]{0,30}://[^/\s:@]{1,256}:)[^@\s/]{1,1024}@", re.IGNORECASE),
     rf"\1{MASK}@"),
    # a bare AWS secret access key: 40 base64 characters of mixed case (hex digests and
    # resource names do not have that shape)
    # JWTs anywhere (three base64url segments, the first starting with eyJ)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\b"), MASK),
)


# a bare session token or other long opaque credential: 100+ base64 characters that look
# random (many digits and capitals, no long lower-case words as paths and names have)
_LONG_RUN = re.compile(r"[A-Za-z0-9/+=]{100,}")
_WORD = re.compile(r"[a-z]{10,}")


def _opaque(match: re.Match[str]) -> str:
    run = match.group()
    digits = sum(c.isdigit() for c in run)
    upper = sum(c.isupper() for c in run)
    if digits * 20 >= len(run) and upper * 10 >= len(run) and not _WORD.search(run):
        return MASK
    return run


# a bare AWS secret access key: exactly 40 base64 characters of mixed case with a digit or
# symbol (hex digests and resource names do not have that shape); checked in code, since
# look-aheads over a long run would make the pattern quadratic
_FORTY = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def _secret_key(match: re.Match[str]) -> str:
    run = match.group()
    mixed = any(c.isupper() for c in run) and any(c.islower() for c in run)
    return MASK if mixed and any(c.isdigit() or c in "/+" for c in run) else run


def redact(text: str) -> str:
    """`text` with every secret-shaped substring replaced by `[REDACTED]`. Every pattern is
    linear in the text's length (a 100,000-character value must not stall an error)."""
    if not text:
        return text
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    text = _FORTY.sub(_secret_key, text)
    return _LONG_RUN.sub(_opaque, text)


def one_line(text: str) -> str:
    """Redacted and folded onto one line (an error message is exactly one line)."""
    return " ".join(redact(text).split())


class RedactingFilter(logging.Filter):
    """Logging filter that redacts the rendered message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            # the handler's formatter would render the traceback after this filter has run
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_logging_filter(logger: logging.Logger | None = None) -> None:
    """Attach the filter to `logger` (default: the root logger) and to its handlers, once."""
    target = logger or logging.getLogger()
    for holder in (target, *target.handlers):
        if not any(isinstance(f, RedactingFilter) for f in holder.filters):
            holder.addFilter(RedactingFilter())
