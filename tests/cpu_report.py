"""The CPU each test module used (its process and the child processes it waited for), printed after the
slowest tests: on a shared 2-core machine the suite's time is bounded by its CPU, not by its waits.

Each xdist worker appends one line per module to a file in the session's shared folder; the process that
prints the summary (the controller, or the only process) reads them all.
"""

from __future__ import annotations

import json
import resource
from pathlib import Path

import pytest
from session_share import shared_root, worker

SHOWN = 15


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuReport:
    def __init__(self) -> None:
        self.module = ""
        self.started = 0.0
        self.lines: Path | None = None

    def _flush(self) -> None:
        if self.module and self.lines is not None:
            with self.lines.open("a") as out:
                out.write(json.dumps({"module": self.module, "cpu_s": round(_cpu() - self.started, 1)}) + "\n")
        self.module = ""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        module = str(item.path.relative_to(item.config.rootpath))
        if module != self.module:
            self._flush()
            if self.lines is None:
                factory = item.config._tmp_path_factory  # type: ignore[attr-defined]  # the session's TempPathFactory
                self.lines = shared_root(factory) / f"cpu-{worker() or 'main'}.jsonl"
            self.module, self.started = module, _cpu()

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._flush()

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
        if worker():
            return
        totals: dict[str, float] = {}
        root = shared_root(config._tmp_path_factory)  # type: ignore[attr-defined]  # the session's TempPathFactory
        for path in root.glob("cpu-*.jsonl"):
            for line in path.read_text().splitlines():
                row = json.loads(line)
                totals[row["module"]] = totals.get(row["module"], 0.0) + row["cpu_s"]
        if not totals:
            return
        terminalreporter.write_sep("=", f"CPU by test module (top {SHOWN}; all: {sum(totals.values()):.0f} s)")
        for module, seconds in sorted(totals.items(), key=lambda kv: -kv[1])[:SHOWN]:
            terminalreporter.write_line(f"{seconds:8.1f} s  {module}")
