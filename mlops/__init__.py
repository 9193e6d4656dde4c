"""The control plane: the `mlops` CLI and the backend seam between the local and AWS paths."""
