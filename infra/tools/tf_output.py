"""Print one value from a `terraform output -json` file: tf_output.py FILE NAME."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Print the named output (strings bare, anything else as JSON); exit 1 when it is missing."""
    if len(argv) != 2:
        print("usage: tf_output.py OUTPUTS_JSON NAME", file=sys.stderr)
        return 2
    outputs = json.loads(Path(argv[0]).read_text())
    if argv[1] not in outputs:
        print(f"no output {argv[1]!r} in {argv[0]}", file=sys.stderr)
        return 1
    value = outputs[argv[1]]["value"]
    print(value if isinstance(value, str) else json.dumps(value))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
