"""The local platform: model-server processes, Lambda execution environments and the API front."""
