"""A deliberate product fault for the rehearsal's own test: promotion never moves the function alias."""

try:
    from mlops.backends.aws import front as aws_front
except ImportError:  # a Python without the project (e.g. the runner's setup-python interpreter)
    aws_front = None

if aws_front is not None:
    if not hasattr(aws_front.ApiFront, "move_alias"):
        raise SystemExit("alias_not_moved: ApiFront.move_alias no longer exists; update this fault")
    aws_front.ApiFront.move_alias = lambda self, version: None
