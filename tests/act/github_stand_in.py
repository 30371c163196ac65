"""A stand-in for the slice of GitHub's REST API the PR report workflows use, kept in one JSON file,
and the two clients the act runs send to it: `gh api` (tests/act/bin/gh hands its arguments over)
and `cml comment create` / `cml comment update` (tests/act/bin/cml). It never talks to GitHub and is
not CML.

The store is $STUB_GITHUB_STORE (default $STUB_RECORD/github.json):
    {"comments": [{"id", "user": {"login"}, "body", "created_at", "updated_at"}, ...],
     "pulls": {"7": {"head": {"sha": "..."}}},
     "statuses": {"<commit sha>": [{"state", "context", "description", "target_url", "creator"}]},
     "environments": ["staging", ...],
     "variable": {"": {"NAME": "value"}, "<environment>": {...}}, "secret": {same shape},
     "runners": [{"id", "name", "status", "busy", "labels": [{"name", "type"}]}]}
Every request is appended to $STUB_RECORD/github-requests.txt as `METHOD /path?query`.

Repository settings, as `make github-check` reads and a user sets them: `gh variable|secret set NAME
[--env E] [--body V]` (the value from stdin without --body) and `gh variable|secret list [--env E]
[--json name]`; environments through `gh api repos/{owner}/{repo}/environments` (GET lists them,
PUT .../environments/NAME creates one). As on GitHub, an environment's variables and secrets can
be listed or set only once it exists (HTTP 404 otherwise). gh fills in `{owner}/{repo}` and these
commands' repository from GH_REPO, else the `origin` remote; without either they fail, as gh does.

Self-hosted runners (the aws-ec2 training jobs): POST .../actions/runners/generate-jitconfig
registers one (name, runner_group_id, labels[], work_folder) and answers its encoded just-in-time
configuration; GET .../actions/runners?name=N lists it; DELETE .../actions/runners/ID removes it.
As on GitHub, these need a token with the repository's Administration permission: the workflow
token the act runs give (WORKFLOW_TOKEN) is refused with GitHub's 403
(https://docs.github.com/en/rest/actions/self-hosted-runners).

Commit statuses (staging.yml writes one, release.yml reads it) are listed newest first, as GitHub
lists them, the creator being the workflow token's bot. Issue comments are listed as GitHub lists
them: oldest first, 30 a page unless `per_page` (at most
100) says otherwise, with a `Link` header naming the next and last pages. The `cml` client does
what the outside run saw CML v0.20.6 do: `create` posts a new comment; `update` makes one GET of
the first page (no `page`, no `per_page`, no `Link` followed) and edits the newest comment on that
page carrying the watermark, whoever wrote it, otherwise posts a new one; the body is the report
plus a blank line and the watermark
`![](https://cml.dev/watermark.png#<sha> "CML watermark <title>")`.
"""

import base64
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

API = "https://api.github.com"
BOT = "github-actions[bot]"  # whose comments the workflow token writes
COMMENTS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<number>\d+)/comments$")
COMMENT = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)$")
PULL = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/pulls/(?P<number>\d+)$")
STATUS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/statuses/(?P<sha>[0-9a-f]{40})$")
STATUSES = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/commits/(?P<sha>[0-9a-f]{40})/statuses$")
ENVIRONMENTS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/environments$")
ENVIRONMENT = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/environments/(?P<name>[^/]+)$")
RUNNERS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/actions/runners$")
JIT_CONFIG = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/actions/runners/generate-jitconfig$")
RUNNER = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/actions/runners/(?P<id>\d+)$")
WORKFLOW_TOKEN = "stand-in-token"  # tests/test_act.py gives it as GITHUB_TOKEN
GITHUB_REMOTE = re.compile(r"github\.com[:/](?P<repo>[^/]+/[^/]+?)(?:\.git)?$")
WATERMARK_URL = "https://cml.dev/watermark.png"


def store_path() -> Path:
    return Path(
        os.environ.get("STUB_GITHUB_STORE") or Path(os.environ["STUB_RECORD"], "github.json")
    )


def load() -> dict:
    path = store_path()
    store = json.loads(path.read_text()) if path.exists() else {}
    store.setdefault("comments", [])
    store.setdefault("pulls", {})
    store.setdefault("statuses", {})
    store.setdefault("environments", [])
    store.setdefault("variable", {})
    store.setdefault("secret", {})
    store.setdefault("runners", [])
    return store


def save(store: dict) -> None:
    store_path().write_text(json.dumps(store, indent=1))


def timestamp(store: dict) -> str:
    """Now, but always later than the store's last write: GitHub's timestamps have seconds only."""
    now = max(int(time.time()), store.get("clock", 0) + 1)
    store["clock"] = now
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def request(method: str, url: str, fields: dict | None = None) -> tuple[int, object, str]:
    """(status, JSON body, Link header) for one request to the stand-in API."""
    parts = urlsplit(url if "://" in url else f"{API}/{url.lstrip('/')}")
    path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
    record = Path(os.environ["STUB_RECORD"], "github-requests.txt")
    with record.open("a") as calls:
        calls.write(f"{method} {path}{'?' + parts.query if parts.query else ''}\n")
    store = load()
    if (match := COMMENTS.match(path)) and method == "GET":
        listed = [c for c in store["comments"] if c["issue"] == int(match["number"])]
        per_page = min(int(query.get("per_page", 30)), 100)
        page = int(query.get("page", 1))
        last = max(1, -(-len(listed) // per_page))
        link = ", ".join(
            f'<{API}{path}?{urlencode({"per_page": per_page, "page": to})}>; rel="{rel}"'
            for rel, to in (("next", page + 1), ("last", last))
            if page < last
        )
        shown = listed[(page - 1) * per_page : page * per_page]
        return 200, [public(c) for c in shown], link
    if (match := COMMENTS.match(path)) and method == "POST":
        now = timestamp(store)
        comment = {
            "id": max([c["id"] for c in store["comments"]] + [1000]) + 1,
            "issue": int(match["number"]),
            "user": {"login": BOT, "type": "Bot"},
            "body": (fields or {})["body"],
            "created_at": now,
            "updated_at": now,
        }
        store["comments"].append(comment)
        save(store)
        return 201, public(comment), ""
    if match := COMMENT.match(path):
        found = [c for c in store["comments"] if c["id"] == int(match["id"])]
        if not found:
            return 404, {"message": "Not Found"}, ""
        if method == "PATCH":
            found[0].update(body=(fields or {})["body"], updated_at=timestamp(store))
        elif method == "DELETE":
            store["comments"].remove(found[0])
        if method in ("PATCH", "DELETE"):
            save(store)
        return (204, None, "") if method == "DELETE" else (200, public(found[0]), "")
    if (match := STATUS.match(path)) and method == "POST":
        fields = fields or {}
        if fields.get("state") not in ("error", "failure", "pending", "success"):
            return 422, {"message": f"state {fields.get('state')!r} is not a status state"}, ""
        if len(fields.get("description", "")) > 140:
            return 422, {"message": "description is longer than 140 characters"}, ""
        status = {
            **{key: fields.get(key, "") for key in ("state", "context", "description")},
            "target_url": fields.get("target_url", ""),
            "creator": {"login": BOT, "type": "Bot"},
            "created_at": timestamp(store),
        }
        store["statuses"].setdefault(match["sha"], []).insert(0, status)
        save(store)
        return 201, status, ""
    if (match := STATUSES.match(path)) and method == "GET":
        return 200, store["statuses"].get(match["sha"], []), ""
    if ENVIRONMENTS.match(path) and method == "GET":
        listed = [{"name": name} for name in store["environments"]]
        return 200, {"total_count": len(listed), "environments": listed}, ""
    if (match := ENVIRONMENT.match(path)) and method == "PUT":
        if match["name"] not in store["environments"]:
            store["environments"].append(match["name"])
            save(store)
        return 200, {"name": match["name"]}, ""
    if RUNNERS.match(path) or JIT_CONFIG.match(path) or RUNNER.match(path):
        return runners(store, method, path, query, fields or {})
    if (match := PULL.match(path)) and method == "GET" and match["number"] in store["pulls"]:
        return 200, {"number": int(match["number"]), **store["pulls"][match["number"]]}, ""
    return 404, {"message": "Not Found"}, ""


def runners(store: dict, method: str, path: str, query: dict, fields: dict):
    """The repository's self-hosted runners: register one just in time, list, remove."""
    if os.environ.get("GH_TOKEN", os.environ.get("GITHUB_TOKEN")) == WORKFLOW_TOKEN:
        return 403, {"message": "Resource not accessible by integration"}, ""
    if JIT_CONFIG.match(path) and method == "POST":
        missing = [k for k in ("name", "runner_group_id", "labels[]") if not fields.get(k)]
        if missing:
            return 422, {"message": f"Invalid input: missing {', '.join(missing)}"}, ""
        if any(runner["name"] == fields["name"] for runner in store["runners"]):
            return 409, {"message": f"Already exists - A runner named {fields['name']} exists"}, ""
        runner = {
            "id": max([r["id"] for r in store["runners"]] + [20]) + 1,
            "name": fields["name"],
            "status": "offline",
            "busy": False,
            "labels": [{"name": fields["labels[]"], "type": "custom"}],
        }
        store["runners"].append(runner)
        save(store)
        config = base64.b64encode(json.dumps({"runner": runner["name"]}).encode()).decode()
        return 201, {"runner": runner, "encoded_jit_config": config}, ""
    if RUNNERS.match(path) and method == "GET":
        listed = [r for r in store["runners"] if query.get("name", r["name"]) == r["name"]]
        return 200, {"total_count": len(listed), "runners": listed}, ""
    if (match := RUNNER.match(path)) and method == "DELETE":
        found = [r for r in store["runners"] if r["id"] == int(match["id"])]
        if not found:
            return 404, {"message": "Not Found"}, ""
        store["runners"].remove(found[0])
        save(store)
        return 204, None, ""
    return 404, {"message": "Not Found"}, ""


def public(comment: dict) -> dict:
    return {key: value for key, value in comment.items() if key != "issue"}


def gh_api(args: list[str]) -> int:
    """`gh api ENDPOINT [--paginate] [--jq EXPR] [--method M] [-f key=value]`, as gh answers it:
    with --paginate every page (following `Link: rel="next"`), the jq filter applied to each."""
    endpoint, method, jq, paginate, fields = None, None, None, False, {}
    options = iter(args)
    for arg in options:
        if arg == "--paginate":
            paginate = True
        elif arg in ("--jq", "-q"):
            jq = next(options)
        elif arg in ("--method", "-X"):
            method = next(options)
        elif arg in ("-f", "-F", "--field", "--raw-field"):
            key, _, value = next(options).partition("=")
            fields[key] = value
        elif arg.startswith("-"):
            sys.exit(f"gh stand-in: `gh api` option {arg} is not modelled")
        else:
            endpoint = arg
    method = method or ("POST" if fields else "GET")
    url = endpoint
    if "{owner}" in url or "{repo}" in url:
        owner, repo = current_repo().split("/")
        url = url.replace("{owner}", owner).replace("{repo}", repo)
    while url:
        status, body, link = request(method, url, fields)
        if status >= 400:
            print(f"gh: {body['message']} (HTTP {status})", file=sys.stderr)
            return 1
        if body is not None:
            text = json.dumps(body)
            if jq is not None:
                text = subprocess.run(
                    ["jq", "--raw-output", jq], input=text, capture_output=True, text=True,
                    check=True,
                ).stdout  # fmt: skip
            sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        following = re.search(r'<([^>]+)>; rel="next"', link)
        url = following[1] if paginate and following else None
    return 0


def current_repo() -> str:
    """owner/repo as gh picks it: GH_REPO, else the origin remote; gh's error without either."""
    if os.environ.get("GH_REPO"):
        return os.environ["GH_REPO"]
    origin = subprocess.run(["git", "remote", "get-url", "origin"], capture_output=True, text=True)
    if origin.returncode == 0 and (match := GITHUB_REMOTE.search(origin.stdout.strip())):
        return match["repo"]
    sys.exit("no git remotes found")


def gh_settings(kind: str, args: list[str]) -> int:
    """`gh variable|secret set NAME [--env E] [--body V]` and `... list [--env E] [--json name]`."""
    command, *rest = args
    name, environment, body, json_fields = None, "", None, None
    options = iter(rest)
    for arg in options:
        if arg in ("--env", "-e"):
            environment = next(options)
        elif arg in ("--body", "-b"):
            body = next(options)
        elif arg == "--json":
            json_fields = next(options)
        elif arg.startswith("-"):
            sys.exit(f"gh stand-in: `gh {kind} {command}` option {arg} is not modelled")
        else:
            name = arg
    repo = current_repo()
    store = load()
    if environment and environment not in store["environments"]:
        where = f"repos/{repo}/environments/{environment}"
        print(f"failed to {command} {kind}s: HTTP 404: Not Found ({API}/{where})", file=sys.stderr)
        return 1
    values = store[kind].setdefault(environment, {})
    if command == "set":
        values[name] = body if body is not None else sys.stdin.read()
        save(store)
        print(f"✓ Set Actions {kind} {name} for {repo}", file=sys.stderr)
        return 0
    if command == "list":
        if json_fields is not None:
            print(json.dumps([{"name": each} for each in sorted(values)]))
        else:
            print("\n".join(sorted(values)))
        return 0
    sys.exit(f"gh stand-in: `gh {kind} {command}` is not modelled")


def cml_comment(mode: str, repo_url: str, target: str, title: str, report_file: str) -> int:
    """`cml comment create|update REPORT --target pr/N --watermark-title TITLE --driver github`."""
    repo = urlsplit(repo_url).path.strip("/")
    number = target.removeprefix("pr/")
    watermark = (
        f'![]({WATERMARK_URL}#{os.environ.get("GITHUB_SHA") or "0"} "CML watermark {title}")'
    )
    marked = re.compile(
        rf'!\[\]\({re.escape(WATERMARK_URL)}#[0-9a-fA-F]+ "CML watermark {re.escape(title)}"\)'
    )
    body = Path(report_file).read_text() + "\n\n" + watermark
    ours = []
    if mode == "update":
        _, first_page, _ = request("GET", f"/repos/{repo}/issues/{number}/comments")
        ours = [comment for comment in reversed(first_page) if marked.search(comment["body"])]
    if ours:
        _, comment, _ = request(
            "PATCH", f"/repos/{repo}/issues/comments/{ours[0]['id']}", {"body": body}
        )
    else:
        _, comment, _ = request("POST", f"/repos/{repo}/issues/{number}/comments", {"body": body})
    print(f"https://github.com/{repo}/pull/{number}#issuecomment-{comment['id']}")
    return 0


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "gh-api":
        sys.exit(gh_api(rest))
    if command in ("gh-variable", "gh-secret"):
        sys.exit(gh_settings(command.removeprefix("gh-"), rest))
    sys.exit(cml_comment(command.removeprefix("cml-"), *rest))
