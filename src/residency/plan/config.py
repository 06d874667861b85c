"""The `configuration` half of a plan: which provider block (hence region) each resource uses.

Terraform names a resource's provider through `provider_config_key` (`aws`, `aws.eu`,
`module.child:aws`); a module may receive providers from its caller (`providers = {...}`)
and a provider's region may be a constant or a variable. This index answers those
questions once per module and key, so the per-resource loop only does dict look-ups.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_INSTANCE_KEY = re.compile(r'\[(?:"(?:[^"\\]|\\.)*"|[0-9]+)\]')


def strip_instance_keys(address: str) -> str:
    """`module.a[0].module.b["x"]` → `module.a.module.b` (configuration addresses have no keys)."""
    return _INSTANCE_KEY.sub("", address) if "[" in address else address


def parent_module(module: str) -> str:
    """`module.a.module.b` → `module.a`; `module.a` → `` (the root)."""
    head, sep, _ = module.rpartition(".module.")
    return head if sep else ""


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What a resource inherits from its provider block."""

    key: str
    region: str | None
    unknown_reason: str | None
    default_tags: dict[str, str]
    zone: str | None = None


class ConfigIndex:
    """Look-ups into `configuration` and top-level `variables`, built in one walk."""

    def __init__(self, plan: dict[str, Any]) -> None:
        conf = plan.get("configuration")
        conf = conf if isinstance(conf, dict) else {}
        providers = conf.get("provider_config")
        self.providers: dict[str, Any] = providers if isinstance(providers, dict) else {}
        variables = plan.get("variables")
        self.variables: dict[str, Any] = {
            k: v["value"]
            for k, v in (variables.items() if isinstance(variables, dict) else ())
            if isinstance(v, dict) and "value" in v
        }
        self._resources: dict[str, dict[str, Any]] = {}
        self._calls: dict[str, dict[str, Any]] = {}
        self._provider_cache: dict[tuple[str, str], ProviderInfo] = {}
        root = conf.get("root_module")
        if isinstance(root, dict):
            self._walk(root, "")

    def _walk(self, module: dict[str, Any], path: str) -> None:
        for res in module.get("resources") or ():
            if isinstance(res, dict) and isinstance(res.get("address"), str):
                self._resources[f"{path}|{res['address']}"] = res
        calls = module.get("module_calls")
        if isinstance(calls, dict):
            for name, call in calls.items():
                if not isinstance(call, dict):
                    continue
                child = f"{path}.module.{name}" if path else f"module.{name}"
                self._calls[child] = call
                inner = call.get("module")
                if isinstance(inner, dict):
                    self._walk(inner, child)

    # ------------------------------------------------------------------ resources
    def resource(self, module: str, type_: str, name: str) -> dict[str, Any] | None:
        """The configuration block of a resource (module path without instance keys)."""
        return self._resources.get(f"{module}|{type_}.{name}")

    def provider_for(self, module: str, type_: str, name: str) -> ProviderInfo:
        conf = self.resource(module, type_, name)
        key = conf.get("provider_config_key") if conf else None
        if not isinstance(key, str):
            key = type_.partition("_")[0]
        cache_key = (module, key)
        hit = self._provider_cache.get(cache_key)
        if hit is None:
            hit = self._provider_cache[cache_key] = self._provider_info(key, module)
        return hit

    # ------------------------------------------------------------------ providers
    def _find_provider(self, key: str, module: str) -> tuple[str, dict[str, Any] | None, str]:
        """Follow `module.x:aws` keys and callers' `providers` maps up to a provider block."""
        if key in self.providers and not _stub(self.providers[key]):
            cfg = self.providers[key]
            mod = cfg.get("module_address", "") if isinstance(cfg, dict) else ""
            return key, cfg if isinstance(cfg, dict) else None, strip_instance_keys(str(mod))
        mod, sep, local = key.rpartition(":")
        if not sep:
            mod, local = module, key
        mod = strip_instance_keys(mod)
        while True:
            candidate = f"{mod}:{local}" if mod else local
            cfg = self.providers.get(candidate)
            if isinstance(cfg, dict) and not (mod and _stub(cfg)):
                return candidate, cfg, mod
            if not mod:
                return local, None, ""
            mapping = self._calls.get(mod, {}).get("providers")
            if isinstance(mapping, dict) and isinstance(mapping.get(local), str):
                local = mapping[local]
            mod = parent_module(mod)

    def _provider_info(self, key: str, module: str) -> ProviderInfo:
        found, cfg, cfg_module = self._find_provider(key, module)
        if cfg is None:
            return ProviderInfo(
                found, None,
                f"provider {found} has no configuration in the plan (region comes from the "
                "environment at apply)", {},
            )
        exprs = cfg.get("expressions")
        exprs = exprs if isinstance(exprs, dict) else {}
        region, reason = self._string(exprs.get("region"), cfg_module, f"provider {found} region")
        zone, _ = self._string(exprs.get("zone"), cfg_module, f"provider {found} zone")
        if region is None and reason is None:
            reason = f"provider {found} sets no region (taken from the environment at apply)"
        return ProviderInfo(found, region, reason, _default_tags(exprs), zone)

    # ------------------------------------------------------------------ expressions
    def _string(self, expr: Any, module: str, what: str) -> tuple[str | None, str | None]:
        value, reason = self.evaluate(expr, module, what)
        if value is None:
            return None, reason
        return (value, None) if isinstance(value, str) else (None, f"{what} is not a string")

    def evaluate(self, expr: Any, module: str, what: str, depth: int = 0) -> tuple[Any, str | None]:
        """A constant, or a variable traced through module calls to the plan's `variables`.

        Returns (value, None), or (None, reason) when only apply can tell, or (None, None)
        when the expression is absent.
        """
        if not isinstance(expr, dict):
            return None, None
        if "constant_value" in expr:
            return expr["constant_value"], None
        refs = expr.get("references")
        if not isinstance(refs, list) or not refs:
            return None, None
        ref = str(refs[0])
        if not ref.startswith("var.") or depth > 32:
            return None, f"{what} ({ref}) unknown until apply"
        var = ref[4:].split(".", 1)[0].split("[", 1)[0]
        if not module:
            if var in self.variables:
                return self.variables[var], None
            return None, f"{what} (var.{var}) has no value in the plan"
        call = self._calls.get(module, {})
        arg = (call.get("expressions") or {}).get(var)
        if arg is not None:
            return self.evaluate(arg, parent_module(module), what, depth + 1)
        declared = ((call.get("module") or {}).get("variables") or {}).get(var)
        if isinstance(declared, dict) and "default" in declared:
            return declared["default"], None
        return None, f"{what} ({module}.var.{var}) has no value in the plan"

    def reference(self, conf: dict[str, Any] | None, *path: str | int) -> str | None:
        """The first resource a configuration expression refers to (`aws_s3_bucket.b`)."""
        node: Any = (conf or {}).get("expressions")
        for step in path:
            if isinstance(step, int):
                node = node[step] if isinstance(node, list) and len(node) > step else None
            else:
                node = node.get(step) if isinstance(node, dict) else None
        refs = node.get("references") if isinstance(node, dict) else None
        for ref in refs if isinstance(refs, list) else ():
            parts = str(ref).split(".")
            if len(parts) >= 2 and parts[0] not in {"var", "local", "data", "module", "each",
                                                    "count", "path", "terraform", "self"}:
                return f"{parts[0]}.{parts[1].split('[', 1)[0]}"
        return None


def _stub(cfg: Any) -> bool:
    """A module's entry with no expressions at all: Terraform writes one for a provider the
    module only requires (`required_providers`); the module inherits its caller's provider
    (seen in real plans, e.g. checkov's plan_and_tf_combine_graph)."""
    return isinstance(cfg, dict) and bool(cfg.get("module_address")) and "expressions" not in cfg


def _default_tags(exprs: dict[str, Any]) -> dict[str, str]:
    """`default_tags { tags = {...} }` of an AWS provider block, when constant."""
    blocks = exprs.get("default_tags")
    if not isinstance(blocks, list):
        return {}
    out: dict[str, str] = {}
    for block in blocks:
        tags = block.get("tags") if isinstance(block, dict) else None
        value = tags.get("constant_value") if isinstance(tags, dict) else None
        if isinstance(value, dict):
            out.update({str(k): str(v) for k, v in value.items()})
    return out
