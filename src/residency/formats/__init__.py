"""Output formats, by name. The CLI derives its `--format` choices from `FORMATS`.

Formatters are imported lazily so the CLI's start-up stays fast (the gate runs in CI).
"""

from __future__ import annotations

import importlib

from residency.formats.interface import Formatter

FORMATS: dict[str, str] = {
    "text": "residency.formats.text:TextFormatter",
    "json": "residency.formats.jsonfmt:JsonFormatter",
    "markdown": "residency.formats.markdown:MarkdownFormatter",
    "sarif": "residency.formats.sarif:SarifFormatter",
    "junit": "residency.formats.junit:JunitFormatter",
}


def get_formatter(name: str) -> Formatter:
    module, _, cls = FORMATS[name].partition(":")
    factory: type[Formatter] = getattr(importlib.import_module(module), cls)
    return factory()


__all__ = ["FORMATS", "Formatter", "get_formatter"]
