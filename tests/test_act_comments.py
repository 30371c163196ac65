"""The two workflows that post the PR report, under act, against the stand-in GitHub API of
tests/act/github_stand_in.py: one report comment per PR on a busy PR (35 comments, more than the
first page of 30 that CML reads), CML installed by exact version, and the fork poster's refusals.

The workflows post with `cml comment create` and their own step lists every page with
`gh api --paginate` and keeps the bot's newest report comment. The `cml` stand-in's `update` reads
only the first page of comments and edits the last watermarked one whoever wrote it, as the outside
run of CML v0.20.6 did: why the workflows do not use it.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import OWNER_REPO, SHARED_VENV, bake, git
from test_act import ACT_DIR, REPOSITORY, act, copy_of, pull_request_event

CML_VERSION = json.loads(Path(__file__).parents[1].joinpath("cookiecutter.json").read_text())[
    "__cml_version"
]
WATERMARK = '"CML watermark model-report")'
ACT_BIN = ACT_DIR / "bin"
SEEDED = 35  # more than the 30 comments of the first page


def seed_store(store: Path, pulls: dict[str, str] | None = None) -> list[dict]:
    """A PR (#7) with 35 comments by people, none a report; the pulls' head SHAs. Returns them."""
    comments = [
        {
            "id": 100 + i,
            "issue": 7,
            "user": {"login": f"reviewer-{i % 3}", "type": "User"},
            "body": f"Review comment {i}: looks fine to me",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }
        for i in range(SEEDED)
    ]
    pulls = {number: {"head": {"sha": sha}} for number, sha in (pulls or {}).items()}
    store.write_text(json.dumps({"comments": comments, "pulls": pulls}))
    return comments


def comments_of(store: Path) -> list[dict]:
    return json.loads(store.read_text())["comments"]


def reports_in(store: Path) -> list[dict]:
    return [comment for comment in comments_of(store) if WATERMARK in comment["body"]]


def assert_one_report(store: Path, seeded: list[dict], report: str) -> dict:
    """The 35 comments untouched, exactly one report comment, whose body is the report plus
    CML's watermark line; returns that comment."""
    comments = comments_of(store)
    assert comments[:SEEDED] == seeded, "the people's comments are untouched"
    reports = reports_in(store)
    assert len(comments) == SEEDED + 1 and len(reports) == 1, [c["id"] for c in reports]
    body = reports[0]["body"]
    assert body.startswith(report + "\n\n![](https://cml.dev/watermark.png#"), body[-200:]
    assert body.endswith(WATERMARK)
    return reports[0]


def assert_cml_created_and_the_step_read_every_page(record: Path) -> None:
    assert (record / "cml-command.txt").read_text() == "create\n"
    requests = (record / "github-requests.txt").read_text().splitlines()
    listing = "GET /repos/acme/act-demo/issues/7/comments"
    assert listing in requests, requests  # the workflow's step: the first page ...
    assert f"{listing}?per_page=30&page=2" in requests  # ... and every next one


@pytest.mark.xdist_group("act-setup")
def test_pr_report_keeps_one_comment_on_a_busy_pr(set_up_project, tmp_path):
    project = copy_of(set_up_project, tmp_path)
    git(project, "switch", "--quiet", "--create", "busy")
    git(project, "commit", "--quiet", "--allow-empty", "--message", "Nothing that moves the model")
    event = pull_request_event("busy")
    store = tmp_path / "github.json"
    seeded = seed_store(store)
    ids = []
    for run in (1, 2):
        record = tmp_path / f"record-{run}"
        result = act(
            project, "pull_request", event, "pr-report.yml", record,
            env={"STUB_GITHUB_STORE": str(store)},
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-6000:]
        report = (record / "artifacts/pr-report/report.md").read_text()
        ids.append(assert_one_report(store, seeded, report)["id"])
        assert_cml_created_and_the_step_read_every_page(record)
        npm = (record / "npm-calls.txt").read_text().splitlines()
        assert npm == [f"install --global --no-audit --no-fund @dvcorg/cml@{CML_VERSION}"]
    # Each run posted a new report; the older one went.
    requests = (tmp_path / "record-2/github-requests.txt").read_text()
    assert ids[1] != ids[0] and f"DELETE /repos/acme/act-demo/issues/comments/{ids[0]}" in requests


@pytest.fixture(scope="module")
def fork_poster(tmp_path_factory) -> Path:
    """A fresh bake in its own git repository: the fork poster never checks out or builds code."""
    project = bake(tmp_path_factory.mktemp("fork-poster"), project_name="Act Demo")
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--message", "Baked")
    git(project, "remote", "add", "origin", f"https://github.com/{OWNER_REPO}.git")
    return project


HEAD = "c0ffee" * 6 + "abcd"


def post_fork_report(
    project: Path, record: Path, store: Path, report: str, pr_number: str = "7",
    head_sha: str = HEAD, head_repository: str = "contributor/act-demo",
    server_url: str = "https://github.com",
):  # fmt: skip
    """One workflow_run event for a finished pr-report run whose artifact holds `report` and
    `pr_number`, as the download-artifact stand-in serves it."""
    artifact = record / "artifacts/pr-report"
    artifact.mkdir(parents=True)
    (artifact / "report.md").write_text(report)
    (artifact / "pr-number").write_text(pr_number + "\n")
    event = {
        "action": "completed",
        "workflow_run": {
            "id": 4242,
            "name": "pr-report",
            "event": "pull_request",
            "conclusion": "success",
            "head_sha": head_sha,
            "head_branch": "feature",
            "head_repository": {"full_name": head_repository},
        },
        "repository": REPOSITORY,
    }
    return act(
        project, "workflow_run", event, "pr-report-comment.yml", record,
        env={"STUB_GITHUB_STORE": str(store), "GITHUB_SERVER_URL": server_url},
    )  # fmt: skip


def test_fork_poster_keeps_one_comment_on_a_busy_pr(fork_poster, tmp_path):
    store = tmp_path / "github.json"
    seeded = seed_store(store, pulls={"7": HEAD})
    for run in (1, 2):
        record = tmp_path / f"record-{run}"
        report = f"## ✅ Model report: act-demo\n\nRun {run}: the fork's report.\n"
        result = post_fork_report(fork_poster, record, store, report)
        assert result.returncode == 0, result.stdout[-6000:]
        assert_one_report(store, seeded, report)
        assert_cml_created_and_the_step_read_every_page(record)
        assert (record / "cml-args.txt").read_text().split("\n")[:2] == ["--target", "pr/7"]
        npm = (record / "npm-calls.txt").read_text().splitlines()
        assert npm == [f"install --global --no-audit --no-fund @dvcorg/cml@{CML_VERSION}"]


REVIEWER_QUOTE = "As the report said:\n\n> ## ✅ Model report: act-demo\n\n" + (
    f"![](https://cml.dev/watermark.png#{'ab' * 20} {WATERMARK}"
)


def quiet_pr_with_a_quoted_report(store: Path) -> list[dict]:
    """A PR with the bot's earlier report, then a reviewer's comment that pasted it, watermark
    included (what made CML 0.20.6 edit the reviewer's comment)."""
    stamp = "2026-01-01T00:00:00Z"
    comments = [
        {"id": 500, "issue": 7, "user": {"login": "github-actions[bot]", "type": "Bot"},
         "body": f"## Old report\n\n![](https://cml.dev/watermark.png#{'cd' * 20} {WATERMARK}",
         "created_at": stamp, "updated_at": stamp},
        {"id": 501, "issue": 7, "user": {"login": "reviewer-0", "type": "User"},
         "body": REVIEWER_QUOTE, "created_at": stamp, "updated_at": stamp},
    ]  # fmt: skip
    store.write_text(json.dumps({"comments": comments, "pulls": {"7": {"head": {"sha": HEAD}}}}))
    return comments


def test_fork_poster_never_edits_a_reviewer_s_quote_and_works_on_ghes(fork_poster, tmp_path):
    """Issue 28 (5, 6): the report is a new comment, the bot's older one goes, the reviewer's
    comment that quotes the report stays as written; every gh call went to the Enterprise
    Server's host with GH_ENTERPRISE_TOKEN (GH_TOKEN serves github.com only)."""
    store = tmp_path / "github.json"
    reviewer = quiet_pr_with_a_quoted_report(store)[1]
    record = tmp_path / "record"
    report = "## ✅ Model report: act-demo\n\nThe new report.\n"
    result = post_fork_report(
        fork_poster, record, store, report, server_url="https://ghes.example.com"
    )
    assert result.returncode == 0, result.stdout[-6000:]
    comments = comments_of(store)
    assert len(comments) == 2 and comments[0] == reviewer  # the bot's #500 went
    assert comments[1]["body"].startswith(report + "\n\n![](https://cml.dev/watermark.png#")
    assert set((record / "gh-hosts.txt").read_text().split()) == {"ghes.example.com"}


@pytest.mark.parametrize(
    ("pr_number", "pull_head", "message"),
    [
        ("7; curl evil.example", HEAD, "pr-number is not a number"),
        ("", HEAD, "pr-number is not a number"),
        ("7", "1234" * 10, f"PR #7 is at {'1234' * 10}, not at the reported commit {HEAD}"),
    ],
    ids=["not-a-number", "empty", "stale-head"],
)
def test_fork_poster_refuses(fork_poster, tmp_path, pr_number, pull_head, message):
    store = tmp_path / "github.json"
    seeded = seed_store(store, pulls={"7": pull_head})
    record = tmp_path / "record"
    result = post_fork_report(fork_poster, record, store, "## Report\n", pr_number=pr_number)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert comments_of(store) == seeded, "nothing was posted"
    assert not (record / "cml-args.txt").exists() and not (record / "npm-calls.txt").exists()


def test_fork_poster_skips_same_repository_runs(fork_poster, tmp_path):
    store = tmp_path / "github.json"
    seeded = seed_store(store, pulls={"7": HEAD})
    record = tmp_path / "record"
    result = post_fork_report(fork_poster, record, store, "## Report\n", head_repository=OWNER_REPO)
    assert result.returncode == 0, result.stdout[-6000:]
    assert comments_of(store) == seeded
    untouched = ("gh-calls.txt", "npm-calls.txt", "cml-args.txt", "github-requests.txt")
    assert not any((record / name).exists() for name in untouched), "the job was skipped"


def stand_in(tmp_path: Path, *args: str, store: Path) -> str:
    """One call of the gh or cml stand-in outside act, against `store`."""
    env = {
        **os.environ,
        "STUB_RECORD": str(tmp_path),
        "STUB_GITHUB_STORE": str(store),
        "STUB_BIN": str(ACT_BIN),
        "STUB_VENV": str(SHARED_VENV),
        "GITHUB_SHA": "ab" * 20,
        "GH_TOKEN": "stand-in-token",
    }
    done = subprocess.run(
        [str(ACT_BIN / args[0]), *args[1:]], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_stand_ins_page_like_github_and_cml(tmp_path):
    """Without the workflows' cleanup the cml stand-in repeats what the outside run saw CML do on
    a busy PR (a new report comment per run); on a quiet PR it edits its comment in place. `gh api`
    lists 30 comments a page, and every page with --paginate."""
    busy, quiet = tmp_path / "busy.json", tmp_path / "quiet.json"
    seed_store(busy)
    quiet.write_text(json.dumps({"comments": [], "pulls": {}}))
    (tmp_path / "report.md").write_text("## Report\n")
    cml = ("cml", "comment", "update", "report.md", "--target", "pr/7")
    cml += ("--watermark-title", "model-report", "--no-publish", "--driver", "github")
    cml += ("--repo", f"https://github.com/{OWNER_REPO}")
    for _ in range(3):
        stand_in(tmp_path, *cml, store=busy)
        stand_in(tmp_path, *cml, store=quiet)
    assert len(reports_in(busy)) == 3 and len(comments_of(busy)) == SEEDED + 3
    assert len(reports_in(quiet)) == 1 and len(comments_of(quiet)) == 1
    assert reports_in(quiet)[0]["body"] == (
        f"## Report\n\n\n![](https://cml.dev/watermark.png#{'ab' * 20} {WATERMARK}"
    )
    # What the outside run saw CML 0.20.6 do: `update` edits a reviewer's comment that quotes the
    # report (the last watermarked one on the first page), and leaves the bot's stale.
    quoted = tmp_path / "quoted.json"
    quiet_pr_with_a_quoted_report(quoted)
    stand_in(tmp_path, *cml, store=quoted)
    bot, reviewer = comments_of(quoted)
    assert reviewer["user"]["login"] == "reviewer-0" and reviewer["body"].startswith("## Report")
    assert bot["body"].startswith("## Old report")
    create = ("cml", "comment", "create", *cml[3:])
    stand_in(tmp_path, *create, store=quoted)
    assert len(comments_of(quoted)) == 3  # create always adds
    listing = f"repos/{OWNER_REPO}/issues/7/comments"
    first_page = stand_in(tmp_path, "gh", "api", listing, "--jq", ".[].id", store=busy)
    every_page = stand_in(
        tmp_path, "gh", "api", "--paginate", listing, "--jq", ".[].id", store=busy
    )
    assert len(first_page.split()) == 30
    assert [int(i) for i in every_page.split()] == [c["id"] for c in comments_of(busy)]
