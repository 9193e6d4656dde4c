"""The local stack's processes around the local backend: the API front, a function version's
pre-traffic check, stopping everything, and what runs where (`mlops up|down|status`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import urllib3

from mlops.backends.base import BackendError
from mlops.backends.local.store import ControlState
from mlops.standins import processes as procs
from mlops.standins.lambda_runtime import INVOKE_PATH


class LocalStack:
    """Mixed into LocalBackend: its state file, API port and routing file are set there."""

    state: ControlState
    api_port: int
    routing_path: Path
    api_url: Callable[[], str]

    @staticmethod
    def _pre_traffic_check(version: str, url: str) -> None:
        """Invoke the new version with a GET /health event before it receives traffic."""
        event = {
            "resource": "/health",
            "path": "/health",
            "httpMethod": "GET",
            "headers": {},
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "stage": "local",
                "resourcePath": "/health",
                "httpMethod": "GET",
                "path": "/local/health",
            },
            "body": None,
            "isBase64Encoded": False,
        }
        resp = urllib3.request("POST", url + INVOKE_PATH, body=json.dumps(event).encode(), timeout=10, retries=False)
        if resp.headers.get("X-Amz-Function-Error"):
            raise BackendError(f"handler raised: {json.loads(resp.data).get('errorMessage', '')[:200]}")
        status = json.loads(resp.data).get("statusCode")
        if status != 200:
            raise BackendError(f"GET /health answered {status}")

    def front_pid(self) -> int | None:
        pid: int | None = self.state.read()["front"].get("pid")
        return pid

    def routing(self) -> dict[str, Any]:
        return json.loads(self.routing_path.read_text()) if self.routing_path.is_file() else {}

    def start_front(self) -> str:
        url = self.api_url()
        front = self.state.read()["front"]
        if procs.alive(front.get("pid")) and front.get("url") == url:
            return url
        if not procs.port_free(self.api_port):
            raise BackendError(f"API port {self.api_port} is in use: set API_PORT to a free port")
        proc = procs.spawn(
            "api-front",
            ["-m", "mlops.standins.api_gateway", "--port", str(self.api_port), "--routing", str(self.routing_path)],
        )
        try:
            procs.wait_healthy("api-front", proc.pid, url + "/", timeout=30)
        except procs.ProcessStartError as exc:
            raise BackendError(str(exc)) from exc
        with self.state.edit() as st:
            st["front"] = {"pid": proc.pid, "url": url, "port": self.api_port}
        return url

    def stop_all(self) -> list[str]:
        stopped = []
        with self.state.edit() as st:
            for kind in ("functions", "endpoint_configs"):
                for name, item in st[kind].items():
                    if procs.alive(item.get("pid")):
                        procs.stop(item["pid"])
                        stopped.append(f"{kind[:-1]} {name}")
                    item["pid"] = None
            if procs.alive(st["front"].get("pid")):
                procs.stop(st["front"]["pid"])
                stopped.append("api front")
            st["front"] = {}
        return stopped

    def processes(self) -> dict[str, Any]:
        st = self.state.read()
        return {
            "api_front": {**st["front"], "alive": procs.alive(st["front"].get("pid"))},
            "functions": {
                k: {"url": v.get("url"), "pid": v.get("pid"), "alive": procs.alive(v.get("pid"))}
                for k, v in st["functions"].items()
                if v.get("pid")
            },
            "model_servers": {
                k: {
                    "url": v.get("url"),
                    "pid": v.get("pid"),
                    "model_version": v["model_version"],
                    "alive": procs.alive(v.get("pid")),
                }
                for k, v in st["endpoint_configs"].items()
                if v.get("pid")
            },
        }
