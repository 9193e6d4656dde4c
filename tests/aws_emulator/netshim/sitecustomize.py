"""Name resolution of the emulated network: API Gateway stage hosts resolve to the AWS emulator.

On AWS, `{api}.execute-api.{region}.amazonaws.com` resolves to API Gateway on port 443. Processes
started with this folder on PYTHONPATH and AWS_EMULATOR_PORT set resolve those names to the
emulator's loopback port instead; nothing else changes (TLS and host name checks still apply).
REHEARSAL_FAULTS names extra modules imported at start-up (used to break the product on purpose).
"""

import importlib
import os
import re
import socket

_PORT = os.environ.get("AWS_EMULATOR_PORT", "")
_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.[a-z0-9-]+\.amazonaws\.com\.?$")
_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, port, *args, **kwargs):
    if _PORT and isinstance(host, str) and _HOST.match(host.lower()):
        return _real_getaddrinfo("127.0.0.1", int(_PORT), *args, **kwargs)
    return _real_getaddrinfo(host, port, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo
for _name in filter(None, os.environ.get("REHEARSAL_FAULTS", "").split(",")):
    importlib.import_module(_name.strip())
