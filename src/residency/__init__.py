"""residency: where personal data lives, where it flows, and whether each transfer is lawful."""

__version__ = "0.1.0"
