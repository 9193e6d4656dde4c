"""Training and evaluation code: runs unchanged in a SageMaker job or on this machine."""
