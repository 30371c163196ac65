"""The one error a client's request can cause: its status and the message naming the problem."""


class RequestError(Exception):
    """A client mistake, answered with `status` and the message, never a 5xx."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
