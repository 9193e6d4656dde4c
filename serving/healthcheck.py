"""Container health probe: exit 0 when GET /ping on the local server answers 200, else 1."""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("SAGEMAKER_BIND_TO_PORT") or os.environ.get("PORT") or "8080"
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as resp:
            return 0 if resp.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
