"""Check a pipeline definition offline against botocore's model of the APIs its steps call.

Each Training, Processing and RegisterModel step's Arguments are the request of CreateTrainingJob,
CreateProcessingJob or CreateModelPackage (the pipeline names the jobs). Pipeline expressions are
replaced with values of the type they produce — a parameter's default for `Get: Parameters.X`, a
string for `Std:Join`, a value of the field's own type for step properties and `Std:JsonGet` — and
the request goes through botocore's ParamValidator, plus the checks it leaves out: enum values,
references to parameters, steps and property files that exist, one local path and name per
processing input and output.
"""

from __future__ import annotations

import datetime
from typing import Any

import botocore.session
from botocore.model import Shape
from botocore.validate import ParamValidator

OPERATIONS = {
    "Training": ("CreateTrainingJob", {"TrainingJobName": "pipelines-check"}),
    "Processing": ("CreateProcessingJob", {"ProcessingJobName": "pipelines-check"}),
    "RegisterModel": ("CreateModelPackage", {}),
}
PARAMETER_TYPES: dict[str, type] = {"String": str, "Float": float, "Integer": int, "Boolean": bool}
EXECUTION_VARIABLES = {"PipelineExecutionId", "PipelineExecutionArn", "PipelineName", "PipelineArn", "StartDateTime"}
EXPRESSIONS = ("Get", "Std:Join", "Std:JsonGet")
SCHEMA_VERSION = "2020-12-01"


def _placeholder(shape: Shape | None) -> Any:
    """A value of the field's type, standing for what the pipeline fills in at run time."""
    if shape is None:
        return "pipeline-value"
    kind = shape.type_name
    if kind == "string":
        return (getattr(shape, "enum", None) or ["pipeline-value"])[0]
    if kind in ("integer", "long"):
        return max(1, int(shape.metadata.get("min", 1)))
    if kind in ("float", "double"):
        return 1.0
    if kind == "boolean":
        return True
    if kind == "timestamp":
        return datetime.datetime(2020, 12, 1, tzinfo=datetime.UTC)
    return "pipeline-value"


class _Checker:
    def __init__(self, definition: dict[str, Any]) -> None:
        self.problems: list[str] = []
        self.parameters = {p.get("Name"): p for p in definition.get("Parameters", [])}
        self.steps: dict[str, dict[str, Any]] = {}
        self._collect(definition.get("Steps", []))
        self.model = botocore.session.get_session().get_service_model("sagemaker")

    def _collect(self, steps: list[dict[str, Any]]) -> None:
        for step in steps:
            name = step.get("Name", "")
            if name in self.steps:
                self.problems.append(f"step name {name!r} used twice")
            self.steps[name] = step
            args = step.get("Arguments", {})
            if step.get("Type") == "Condition":
                self._collect(args.get("IfSteps", []) + args.get("ElseSteps", []))

    def reference(self, where: str, path: str) -> None:
        head, _, rest = path.partition(".")
        if head == "Parameters" and rest not in self.parameters:
            self.problems.append(f"{where}: unknown parameter {rest!r}")
        elif head == "Execution" and rest not in EXECUTION_VARIABLES:
            self.problems.append(f"{where}: unknown execution variable {rest!r}")
        elif head == "Steps":
            step_name, _, prop = rest.partition(".")
            step = self.steps.get(step_name)
            if step is None:
                self.problems.append(f"{where}: unknown step {step_name!r}")
            elif prop.startswith("PropertyFiles."):
                names = {f.get("PropertyFileName") for f in step.get("PropertyFiles", [])}
                if prop.removeprefix("PropertyFiles.") not in names:
                    self.problems.append(f"{where}: step {step_name!r} has no property file {prop!r}")
        elif head not in ("Parameters", "Execution", "Steps"):
            self.problems.append(f"{where}: cannot resolve {path!r}")

    def expression(self, where: str, value: dict[str, Any], shape: Shape | None) -> Any:
        """Check the references inside an expression; return a placeholder of the type it produces."""
        ((kind, body),) = value.items()
        if kind == "Get":
            self.reference(where, body)
            if body.startswith("Parameters.") and body[11:] in self.parameters:
                return self.parameters[body[11:]].get("DefaultValue")
            return _placeholder(shape)
        if kind == "Std:Join":
            for item in body.get("Values", []):
                self.substitute(where, item, None)
            return "joined-value"
        self.substitute(where, body.get("PropertyFile"), None)
        return _placeholder(shape)

    def substitute(self, where: str, value: Any, shape: Shape | None) -> Any:
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in EXPRESSIONS:
            return self.expression(where, value, shape)
        if isinstance(value, dict):
            members = getattr(shape, "members", None)
            if shape is not None and shape.type_name == "map":
                return {k: self.substitute(f"{where}.{k}", v, shape.value) for k, v in value.items()}
            return {
                k: self.substitute(f"{where}.{k}", v, members.get(k) if members else None) for k, v in value.items()
            }
        if isinstance(value, list):
            member = shape.member if shape is not None and shape.type_name == "list" else None
            return [self.substitute(f"{where}[{i}]", v, member) for i, v in enumerate(value)]
        enum = getattr(shape, "enum", None)
        if isinstance(value, str) and enum and value not in enum:
            self.problems.append(f"{where}: {value!r} is not one of {', '.join(enum)}")
        return value

    def api_step(self, step: dict[str, Any]) -> None:
        operation, names = OPERATIONS[step["Type"]]
        shape = self.model.operation_model(operation).input_shape
        where = f"{step.get('Name')} ({operation})"
        request = {**names, **self.substitute(where, step.get("Arguments", {}), shape)}
        report = ParamValidator().validate(request, shape)
        if report.has_errors():
            self.problems.append(f"{where}: {' '.join(report.generate_report().split())}")
        if step["Type"] == "Processing":
            args = step.get("Arguments", {})
            inputs = args.get("ProcessingInputs", [])
            outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
            paths = [i.get("S3Input", {}).get("LocalPath") for i in inputs if "S3Input" in i]
            names_seen = [i.get("InputName") for i in inputs] + [o.get("OutputName") for o in outputs]
            for label, items in (("input local path", paths), ("input/output name", names_seen)):
                twice = sorted({x for x in items if items.count(x) > 1})
                if twice:
                    self.problems.append(f"{where}: {label} used twice: {', '.join(map(str, twice))}")

    def run(self, version: Any) -> list[str]:
        if version != SCHEMA_VERSION:
            self.problems.append(f"definition version {version!r} is not {SCHEMA_VERSION}")
        for name, p in self.parameters.items():
            expected = PARAMETER_TYPES.get(p.get("Type", ""))
            if expected is None or not isinstance(p.get("DefaultValue"), expected):
                self.problems.append(f"parameter {name!r}: default {p.get('DefaultValue')!r} is not {p.get('Type')}")
        for step in self.steps.values():
            kind = step.get("Type")
            if kind in OPERATIONS:
                self.api_step(step)
            elif kind == "Condition":
                args = step.get("Arguments", {})
                if not args.get("Conditions"):
                    self.problems.append(f"{step.get('Name')}: a condition step needs conditions")
                self.substitute(step.get("Name", ""), args.get("Conditions", []), None)
            elif kind == "Fail":
                self.substitute(step.get("Name", ""), step.get("Arguments", {}), None)
            else:
                self.problems.append(f"{step.get('Name')}: unsupported step type {kind!r}")
        return self.problems


def validate(definition: dict[str, Any]) -> list[str]:
    """Every problem found in the definition, one line each; an empty list when it is valid."""
    return _Checker(definition).run(definition.get("Version"))
