"""The one error type of slicer-cloud.

Every failure a user can cause is a :class:`SlicerCloudError`: a message written for the user,
an HTTP status for web layers, and an optional detail for the log only (paths, exceptions).
"""

from __future__ import annotations


class SlicerCloudError(Exception):
    """A failure with a message fit to show the user.

    :param message: what went wrong and, where possible, what to do about it.
    :param status: the HTTP status a web layer answers with (4xx: the user's input; 5xx: ours).
    :param detail: extra information for the log, never shown to the user.
    :param retry_after_s: for a temporary refusal (503 busy), when trying again makes sense;
        web layers send it as ``Retry-After``.
    """

    def __init__(
        self, message: str, *, status: int = 400, detail: str | None = None, retry_after_s: int | None = None
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message
