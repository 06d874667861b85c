"""The declared data map: parse, validate against the policy pack, build the model."""

from residency.datamap.loader import load_map, parse_map

__all__ = ["load_map", "parse_map"]
