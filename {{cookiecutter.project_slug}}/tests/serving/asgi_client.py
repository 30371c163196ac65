"""Requests to the serving app in process, through ASGI: fast enough for fuzzing, no sockets."""

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from {{ cookiecutter.module_name }}.serve import App

MODEL_NAME = "served-model"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(app: App, method: str, path: str, body: Any = None, headers: dict | None = None):
    """One request through the ASGI app, in process: bytes go as they are, anything else as JSON."""
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [
            (key.lower().encode(), value.encode())
            for key, value in {"content-length": str(len(raw)), **(headers or {})}.items()
        ],
    }
    asyncio.run(app(scope, receive, send))
    start, content = sent
    return Response(
        start["status"],
        {key.decode(): value.decode() for key, value in start["headers"]},
        content["body"],
    )


def start_up(app: App) -> App:
    """Run the app's lifespan start-up (warm-up, then ready) as a server would."""
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive():
        return next(messages)

    async def send(message):
        assert message["type"] != "lifespan.startup.failed", message

    asyncio.run(app({"type": "lifespan"}, receive, send))
    app.ready = True  # the shutdown message above cleared it; the app stays in use
    return app
