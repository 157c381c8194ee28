"""The one error the client raises for everything the server refuses or cannot answer."""

from __future__ import annotations


class HumanPingError(Exception):
    """The server refused a request, or could not be reached.

    `code` is the API's machine-readable code (invalid_input, unauthorized, forbidden,
    not_found, conflict, insufficient_funds, idempotency_key_reused, internal) or `unreachable`;
    `message` says what was wrong and what to do; `status` is the HTTP status when there was one.
    """

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
