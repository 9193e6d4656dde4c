"""The local stack brought up: the API front, and the live release (or the newest version as a preview).

Used by `mlops up` (mlops/cli/stack.py) and the demo (mlops/demo.py).
"""

from __future__ import annotations

from typing import Any


def bring_up() -> dict[str, Any]:
    """Start the API front and serve the live release, or the newest registered version as a preview."""
    from mlops.backends.base import Release
    from mlops.backends.local import LocalBackend

    backend = LocalBackend()
    url = backend.start_front()
    live = backend.live_release()
    if live:
        from mlops.release import bring_up_release

        bring_up_release(backend, live)
        serving, mode = live.model_version, "release"
    else:
        versions = backend.list_versions()
        if not versions:
            return {"api_url": url, "model_version": None, "mode": "empty"}
        newest = versions[-1]
        preview = Release(release_id=f"preview-v{newest.version}", model_version=newest.version, stage="local")
        preview.endpoint_config = backend.deploy_endpoint(newest, preview)
        preview.lambda_version = backend.publish_function(preview)
        backend.move_alias(preview.lambda_version)
        backend.deploy_stage(preview)
        serving, mode = newest.version, "preview"
    return {"api_url": url, "model_version": serving, "mode": mode}
