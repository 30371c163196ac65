"""The one error a client's request can cause: its status and the message naming the problem."""

from typing import Any

# What a request echoes in an error (a name, a value) is cut to SHOWN_CHARS, and a whole message
# to MESSAGE_CHARS, so an error answer stays small whatever the body held.
SHOWN_CHARS = 60
MESSAGE_CHARS = 500


class RequestError(Exception):
    """A client mistake, answered with `status` and the message, never a 5xx."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def shown(value: Any) -> str:
    """A value from a request, as an error quotes it: its repr, cut to SHOWN_CHARS."""
    return cut(repr(value), SHOWN_CHARS)


def cut(text: str, limit: int = MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
