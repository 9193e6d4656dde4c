"""The one exception type the handler turns into a JSON error answer."""

from __future__ import annotations


class ApiError(Exception):
    """A request that cannot be served; `status` is the HTTP status, the message is shown to the caller."""

    def __init__(self, status: int, message: str, metric: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        # Name of the CloudWatch metric counted for this error (None: count nothing extra).
        self.metric = metric if metric is not None else ("BadRequests" if status < 500 else "EndpointErrors")


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)
