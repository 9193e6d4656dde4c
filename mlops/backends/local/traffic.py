"""The local backend's progressive delivery: a candidate beside the live release, the alias's weights
and mirror (written to routing.json for the local front), the candidate's signals from its own log,
and the shadow log of mirrored requests. Mixed into LocalBackend (mlops/backends/local/__init__.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops.backends.base import ModelVersion, Release
from mlops.backends.local.signals import breaches, read_shadow_log, read_signals
from mlops.standins import processes as procs


def version_logs(version: str) -> list[Path]:
    """The log of one local function version (its EMF lines and unhandled errors)."""
    return sorted(procs.logs_dir().glob(f"lambda-v{version}.log")) if version else []


class LocalTraffic:
    """Progressive-delivery methods of LocalBackend; they use its state, processes and routing."""

    state: Any
    shadow_log: Path
    current_endpoint_config: Callable[[], str]
    _start_config: Callable[[ModelVersion, Release], str]
    _publish: Callable[[Release, str], str]
    _ensure_function: Callable[[str], dict[str, Any]]
    _write_routing: Callable[[], None]

    def stage_candidate(self, version: ModelVersion, release: Release, same_model: bool) -> str:
        config = self.current_endpoint_config() if same_model else self._start_config(version, release)
        release.candidate = {"endpoint_config": config, "own_model": not same_model}
        fn = self._publish(release, config)
        release.candidate["function_version"] = fn
        return fn

    def route(self, primary: str, candidate: str = "", weight: float = 0.0, mirror: str = "") -> None:
        for v in {primary, candidate, mirror} - {""}:
            self._ensure_function(v)
        alias: dict[str, Any] = {"live": primary}
        if candidate and weight > 0:
            alias["weights"] = {candidate: round(weight, 4)}
        if mirror:
            alias["mirror"] = mirror
        with self.state.edit() as st:
            st["alias"] = alias
        self._write_routing()

    def candidate_signals(self, release: Release, since: float) -> tuple[list[str], dict[str, int]]:
        cand = str(release.candidate.get("function_version", ""))
        primary = self.state.read()["alias"].get("live", "")
        own = read_signals(version_logs(cand), since)
        other = read_signals(version_logs(primary), since) if primary != cand else None
        served = {"candidate": own.invocations + own.unhandled}
        served["primary"] = other.invocations + other.unhandled if other else 0
        return [f"candidate {b}" for b in breaches(own)], served

    def shadow_pairs(self, release: Release, since: float) -> list[dict[str, Any]]:
        cand = str(release.candidate.get("function_version", ""))
        return [p for p in read_shadow_log(self.shadow_log, since) if p.get("candidate_version") == cand]

    def drop_candidate(self, release: Release) -> None:
        """Stop the candidate's function version and model server unless something routes to them."""
        cand = release.candidate
        st = self.state.read()
        routed = {st["alias"].get("live"), *st["alias"].get("weights", {}), st["alias"].get("mirror")}
        configs_in_use = {st["endpoint"].get("config")} | {
            st["functions"].get(v or "", {}).get("endpoint_config") for v in routed
        }
        with self.state.edit() as s:
            fn = s["functions"].get(str(cand.get("function_version", "")))
            if fn and cand.get("function_version") not in routed:
                procs.stop(fn.get("pid"))
                fn["pid"] = None
            cfg = s["endpoint_configs"].get(cand.get("endpoint_config", ""))
            if cfg and cand.get("own_model") and cand.get("endpoint_config") not in configs_in_use:
                procs.stop(cfg.get("pid"))
                cfg["pid"] = None
