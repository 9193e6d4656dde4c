"""The steps of a GitHub Actions workflow file, with their line numbers, and its `${{ }}` expressions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class Step:
    workflow: str  # path relative to the repository
    job: str
    index: int
    line: int  # 1-based line of the step in the file
    name: str
    run: str | None
    uses: str | None
    condition: str | None
    env: dict[str, str] = field(default_factory=dict)
    with_: dict[str, str] = field(default_factory=dict)  # a `uses:` step's inputs

    @property
    def where(self) -> str:
        return f"{self.workflow}:{self.line}"


@dataclass
class Job:
    workflow: str
    name: str
    env: dict[str, str]
    steps: list[Step]
    environment: str = ""  # the job's GitHub environment (its OIDC token's subject names it)


def _plain(node: yaml.Node) -> Any:
    return yaml.safe_load(yaml.serialize(node))


def _get(mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
    for k, v in mapping.value:
        if k.value == key:
            return v
    return None


def read_jobs(path: Path, root: Path) -> list[Job]:
    """Every job of the workflow with its steps in order (line numbers from the YAML nodes)."""
    node = yaml.compose(path.read_text())
    rel = path.relative_to(root).as_posix()
    jobs_node = _get(node, "jobs")
    jobs = []
    for job_key, job_node in jobs_node.value if jobs_node is not None else []:
        env_node = _get(job_node, "env")
        env = {str(k): str(v) for k, v in (_plain(env_node) or {}).items()} if env_node is not None else {}
        steps = []
        steps_node = _get(job_node, "steps")
        for i, step_node in enumerate(steps_node.value if steps_node is not None else []):
            data = _plain(step_node)
            name = data.get("name") or (f"Run {data['run'].splitlines()[0]}" if "run" in data else data.get("uses", ""))
            step_env = {str(k): str(v) for k, v in (data.get("env") or {}).items()}
            line = step_node.start_mark.line + 1
            run, uses, condition = data.get("run"), data.get("uses"), data.get("if")
            inputs = {str(k): str(v) for k, v in (data.get("with") or {}).items()}
            steps.append(Step(rel, job_key.value, i, line, str(name), run, uses, condition, step_env, inputs))
        environment = _plain(_get(job_node, "environment")) if _get(job_node, "environment") is not None else ""
        if isinstance(environment, dict):
            environment = environment.get("name", "")
        jobs.append(Job(rel, job_key.value, env, steps, str(environment or "")))
    return jobs


def _lookup(context: dict, path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return ""
        value = value[part]
    return value


def evaluate(expression: str, context: dict) -> Any:
    """The subset the workflows use: `a.b.c`, 'literals', `x || y`, always(), success(), failure(), cancelled()."""
    for option in (o.strip() for o in expression.split("||")):
        if option in ("always()", "success()", "failure()", "cancelled()"):
            value: Any = {
                "always()": True,
                "success()": context.get("_ok", True) and not context.get("_cancelled", False),
                "failure()": not context.get("_ok", True),
                "cancelled()": context.get("_cancelled", False),
            }[option]
        elif option[:1] in "'\"" and option[-1:] == option[:1]:
            value = option[1:-1]
        else:
            value = _lookup(context, option)
        if value:
            return value
    return ""


def substitute(text: str, context: dict) -> str:
    return EXPR.sub(lambda m: str(evaluate(m.group(1), context)), text)


def should_run(step: Step, context: dict) -> bool:
    """GitHub runs a step while the job succeeds, and is not cancelled, unless its `if` says otherwise
    (always(), failure(), cancelled())."""
    if not step.condition:
        return bool(evaluate("success()", context))
    return bool(evaluate(EXPR.sub(lambda m: m.group(1), step.condition), context))
