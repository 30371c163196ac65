"""The processes of the stand-in Cloud Run: an instance for each revision a URL reaches (this
project's own server with its image's model, tests/act/serve-image), and a front for each URL,
which checks the ID token and routes the request as Cloud Run would. They outlive the gcloud call
and act's step that started them; `python instances.py stop STATE` ends them all.

    python instances.py front SERVICE_FILE TAG PORT    (TAG empty: the service URL)
    python instances.py stop STATE_FOLDER
"""

import base64
import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from traffic import GcloudError, reached, resolved, url

SERVE_IMAGE = Path(__file__).resolve().parents[1] / "serve-image"


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def save(path: Path, service: dict) -> None:
    """Whole or not at all: the fronts read the file while gcloud writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(service, indent=1))
    partial.replace(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], log: Path, cwd: Path | None = None) -> int:
    """A process outliving this gcloud call and act's step (own session, no inherited output)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            start_new_session=True,
        )  # fmt: skip
    return process.pid


def alive(pid: int) -> bool:
    """Running, not a zombie (a process this call stopped stays one until the call ends)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1]
    except FileNotFoundError:
        return False
    return not state.startswith("Z")


def stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def listening(port: int, pid: int, seconds: float) -> bool:
    """Cloud Run's default startup probe: a TCP connection to the port, until the deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and alive(pid):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def instance(revision: dict) -> list[str]:
    """The command of a revision's instance: its image's server on its port, with its env."""
    env = [f"{key}={value}" for key, value in revision["env"].items()]
    return [str(SERVE_IMAGE), revision["image"], str(revision["port"]), *env]


def reconcile(path: Path, service: dict) -> None:
    """Every revision a URL reaches runs (started and probed); the others are scaled to zero.
    A URL gets its front when it first exists."""
    folder = path.parent / service["name"]
    reachable = reached(service)
    for name, revision in service["revisions"].items():
        pid = revision.get("pid")
        if name in reachable and not (pid and alive(pid)) and revision["ready"]:
            revision["pid"] = start(instance(revision), folder / f"{name}.log", cwd=folder / name)
            if not listening(revision["port"], revision["pid"], 60):
                raise GcloudError(f"Revision '{name}' did not start again: {folder / name}.log")
        elif name not in reachable and pid:
            stop(pid)
            revision.pop("pid")
    fronts = service.setdefault("fronts", {})
    for tag, port in [("", service["port"]), *service["tagPorts"].items()]:
        if not (fronts.get(tag) and alive(fronts[tag])):
            fronts[tag] = start(
                [sys.executable, __file__, "front", str(path), tag, str(port)],
                folder / f"front-{tag or 'service'}.log",
            )  # fmt: skip
            if not listening(port, fronts[tag], 30):
                raise GcloudError(f"the stand-in's front on port {port} did not start")
    save(path, service)


def front(path: str, tag: str, port: int) -> None:
    state = Path(path)

    class Front(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.forward()

        do_POST = do_PUT = do_DELETE = do_GET

        def reply(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            service = json.loads(state.read_text())
            problem = token_problem(self.headers.get("Authorization", ""), service)
            if problem:
                return self.reply(401, f"Cloud Run stand-in: {problem}")
            revision = route(service, tag)
            if revision is None:
                return self.reply(404, f"Cloud Run stand-in: no revision is tagged {tag}")
            connection = http.client.HTTPConnection(
                "127.0.0.1", service["revisions"][revision]["port"], timeout=60
            )
            headers = {
                key: value for key, value in self.headers.items()
                if key.lower() in ("content-type", "accept")
            }  # fmt: skip
            connection.request(self.command, self.path, body or None, headers)
            answer = connection.getresponse()
            content = answer.read()
            self.send_response(answer.status)
            for key in ("Content-Type", "Allow"):
                if answer.getheader(key):
                    self.send_header(key, answer.getheader(key))
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args) -> None:
            print(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}", flush=True)

    ThreadingHTTPServer(("127.0.0.1", port), Front).serve_forever()


def token_problem(authorization: str, service: dict) -> str:
    if not authorization.startswith("Bearer "):
        return "no ID token (Authorization: Bearer)"
    try:
        claims = claims_of(authorization.removeprefix("Bearer "))
    except (IndexError, ValueError):
        return "the bearer token is not a JWT"
    accepted = [url(service["port"]), *service["customAudiences"]]
    if claims.get("aud") not in accepted:
        return f"the token's audience {claims.get('aud')!r} is none of {accepted}"
    if claims.get("exp", 0) < time.time():
        return "the token has expired"
    return ""


def route(service: dict, tag: str) -> str | None:
    targets = resolved(service)
    if tag:
        return next((t["revisionName"] for t in targets if t.get("tag") == tag), None)
    shares = [(t["revisionName"], t["percent"]) for t in targets if t.get("percent")]
    if not shares:
        return None
    return random.choices([name for name, _ in shares], [share for _, share in shares])[0]


def stop_all(folder: str) -> None:
    """End the instances and fronts the stand-in started (their ids are in the state)."""
    for path in Path(folder).glob("*/*.json"):
        service = json.loads(path.read_text())
        for pid in [
            *(revision.get("pid") for revision in service["revisions"].values()),
            *service.get("fronts", {}).values(),
        ]:
            if pid:
                stop(pid)


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


if __name__ == "__main__":
    verb, *rest = sys.argv[1:]
    if verb == "front":
        front(rest[0], rest[1], int(rest[2]))
    elif verb == "stop":
        stop_all(rest[0])
