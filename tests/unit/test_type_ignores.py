"""Every `# type: ignore` names the error codes it silences, so it hides nothing else; in the code that
ships (serving/, lambda/, pipelines/) it also says why, after the codes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[\w\s,-]+\])?(?P<rest>.*)$")
EXPLAINED = ("serving/", "lambda/", "pipelines/")


def python_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    this = Path(__file__).resolve()  # its own examples are strings
    return [REPO / name for name in listed if (REPO / name).is_file() and REPO / name != this]


def ignores() -> list[tuple[str, int, re.Match[str]]]:
    found = []
    for path in python_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if match := IGNORE.search(line):
                found.append((path.relative_to(REPO).as_posix(), number, match))
    return found


def test_every_type_ignore_names_its_error_codes() -> None:
    bare = [f"{name}:{number}" for name, number, match in ignores() if not match["codes"]]
    assert not bare, "a `# type: ignore` without [error-code]: " + ", ".join(bare)


def test_type_ignores_in_shipped_code_say_why() -> None:
    unexplained = [
        f"{name}:{number}"
        for name, number, match in ignores()
        if name.startswith(EXPLAINED) and not match["rest"].strip().lstrip("#").strip()
    ]
    assert not unexplained, "add a short reason after the codes: " + ", ".join(unexplained)


def test_the_check_catches_a_bare_ignore() -> None:
    assert not IGNORE.search("x = 1  # type: ignore")["codes"]
    assert IGNORE.search("x = 1  # type: ignore[attr-defined]  # set at run time")["codes"] == "[attr-defined]"
