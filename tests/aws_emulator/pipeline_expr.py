"""The expression language of SageMaker pipeline definitions: Get, Std:Join, Std:JsonGet, conditions.

SageMaker resolves these at run time: `Parameters.X` from the execution's parameters (typed by the
definition), `Execution.*` from the execution, `Steps.S.<property path>` from the describe output of
step S's job, and JsonGet reads a property file (a JSON output of a processing step).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]|\[\s*(\d+)\s*\]")


def walk(value: Any, path: str) -> Any:
    """Follow `A.B['c'][0].D` through dicts and lists; KeyError when a part is missing."""
    for m in TOKEN.finditer(path):
        key = next(g for g in m.groups() if g is not None)
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def typed(kind: str, raw: Any) -> Any:
    if kind == "Float":
        return float(raw)
    if kind == "Integer":
        return int(raw)
    if kind == "Boolean":
        return raw if isinstance(raw, bool) else str(raw).lower() == "true"
    return str(raw)


def text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Resolver:
    """Resolves expressions against parameters, execution variables, step properties and property files."""

    def __init__(self, parameters: dict, execution: dict, properties: dict, property_files: dict) -> None:
        self.parameters, self.execution = parameters, execution
        self.properties, self.property_files = properties, property_files

    def get(self, ref: str) -> Any:
        head, _, rest = ref.partition(".")
        if head == "Parameters":
            return self.parameters[rest]
        if head == "Execution":
            return self.execution[rest]
        if head == "Steps":
            step, _, path = rest.partition(".")
            if path.startswith("PropertyFiles."):
                return ("property-file", step, path.removeprefix("PropertyFiles."))
            return walk(self.properties[step], path)
        raise KeyError(f"unsupported reference {ref}")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self.get(value["Get"])
        if set(value) == {"Std:Join"}:
            spec = value["Std:Join"]
            return str(spec["On"]).join(text(self(v)) for v in spec["Values"])
        if set(value) == {"Std:JsonGet"}:
            spec = value["Std:JsonGet"]
            ref = self(spec["PropertyFile"])
            _, step, name = ref
            return walk(self.property_files[step][name], spec["Path"])
        return {k: self(v) for k, v in value.items()}


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Resolver, dict], bool]:
    def check(r: Resolver, cond: dict) -> bool:
        left, right = r(cond["LeftValue"]), r(cond["RightValue"])
        if isinstance(left, (int, float)) or isinstance(right, (int, float)):
            left, right = float(left), float(right)
        return op(left, right)

    return check


CONDITIONS: dict[str, Callable[[Resolver, dict], bool]] = {
    "Equals": _compare(lambda a, b: a == b),
    "GreaterThan": _compare(lambda a, b: a > b),
    "GreaterThanOrEqualTo": _compare(lambda a, b: a >= b),
    "LessThan": _compare(lambda a, b: a < b),
    "LessThanOrEqualTo": _compare(lambda a, b: a <= b),
    "In": lambda r, c: r(c["QueryValue"]) in r(c["Values"]),
    "Not": lambda r, c: not evaluate(r, c["Expression"]),
    "Or": lambda r, c: any(evaluate(r, x) for x in c["Conditions"]),
}


def evaluate(resolver: Resolver, condition: dict) -> bool:
    kind = condition["Type"]
    if kind not in CONDITIONS:
        raise ValueError(f"condition type {kind} is not supported by the emulator")
    return CONDITIONS[kind](resolver, condition)
