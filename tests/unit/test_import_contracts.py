"""Import contracts, read from the source with `ast` (every import, also those inside functions): no import
loop, no folder that ships to AWS on its own imports the control plane, the AWS backend imports nothing of
MLflow or the local backend, and the release logic imports no backend implementation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Folder → the package name its modules are imported by.
ROOTS = {"mlops": "mlops", "pipelines": "pipelines", "training": "training", "serving": "serving"}
LAMBDA_PACKAGE = REPO / "lambda" / "classify_api"
SKIP = {"__pycache__"}


def module_files() -> dict[str, Path]:
    """Every project module by its dotted name (packages by their __init__)."""
    found: dict[str, Path] = {}
    trees = [(REPO / folder, package) for folder, package in ROOTS.items()] + [(LAMBDA_PACKAGE, "classify_api")]
    for root, package in trees:
        for path in sorted(root.rglob("*.py")):
            if SKIP.intersection(path.parts):
                continue
            parts = [package, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = module_files()


def imports_of(name: str, path: Path) -> set[str]:
    """The dotted names a module imports (relative imports resolved), project or not."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return out


def project_edges() -> dict[str, set[str]]:
    """Module → the project modules it imports (a name that is not a module counts as its package)."""
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = set()
        for imported in imports_of(name, path):
            while imported and imported not in MODULES:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)  # a package's own __init__ is not a dependency of its modules
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def offenders(prefixes: tuple[str, ...], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """Modules under `prefixes` that import something under `forbidden` (project or third-party)."""
    bad: dict[str, list[str]] = {}
    for name, path in MODULES.items():
        if not name.startswith(prefixes):
            continue
        hits = sorted(i for i in imports_of(name, path) if any(i == f or i.startswith(f + ".") for f in forbidden))
        if hits:
            bad[name] = hits
    return bad


def package(name: str) -> tuple[str, ...]:
    """A package's modules: its __init__ and everything under it."""
    return tuple(n for n in MODULES if n == name or n.startswith(name + "."))


def test_the_contracts_see_every_folder() -> None:
    assert {"mlops.release", "mlops.backends.aws", "pipelines.local_runner", "training.evaluate"} <= set(MODULES)
    assert {"mlops.cli", "mlops.cost", "mlops.backends.local", "mlops.standins.lambda_runtime"} <= set(MODULES)
    assert {"serving.server", "classify_api.handler"} <= set(MODULES)
    edges = project_edges()
    assert "mlops.backends.base" in edges["mlops.release"]  # a `from … import` of a module is seen
    assert "mlops.release.choice" in edges["mlops.release.traffic"]


def test_no_import_loop() -> None:
    assert cycles(project_edges()) == []


def test_a_loop_would_be_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("folder", ["pipelines", "training", "serving", "classify_api"])
def test_folders_that_ship_to_aws_never_import_the_control_plane(folder: str) -> None:
    assert offenders((folder + ".", folder), ("mlops",)) == {}


def test_the_aws_backend_imports_nothing_of_mlflow_or_the_local_backend() -> None:
    aws_modules = package("mlops.backends.aws")
    assert len(aws_modules) >= 5 and "mlops.backends.aws.front" in aws_modules
    assert "mlops.backends.local.registry" in package("mlops.backends.local")
    forbidden = ("mlflow", "mlops.backends.local", "mlops.standins")
    assert offenders(aws_modules, forbidden) == {}


def test_the_release_logic_imports_no_backend_implementation() -> None:
    release = package("mlops.release")
    implementations = tuple(n for n in MODULES if n.startswith("mlops.backends.") and n != "mlops.backends.base")
    assert {"mlops.release", "mlops.release.traffic"} <= set(release)
    assert {"mlops.backends.aws", "mlops.backends.local.store", "mlops.backends.factory"} <= set(implementations)
    assert offenders(release, (*implementations, "mlflow", "boto3", "botocore", "mlops.standins")) == {}


TRAINING_STACK = ("torch", "torchvision", "training.data", "training.model", "training.export", "training.train")


def test_the_gate_and_the_control_plane_never_load_the_training_stack() -> None:
    # The evaluation step scores the ONNX artifact, and the CLI and the local runner only list, pack and register:
    # none needs torch, whose import costs seconds of CPU in every process that makes it.
    assert "training.photos" in MODULES and "training.model_tar" in MODULES
    gate = ("training.evaluate", "training.photos", "training.model_tar", "training.data_manifest")
    assert offenders(("mlops", "pipelines", *gate), TRAINING_STACK) == {}


def test_a_control_plane_module_that_loads_the_training_stack_is_found() -> None:
    assert offenders(("training.train",), TRAINING_STACK)  # it trains: it imports torch and training.data
