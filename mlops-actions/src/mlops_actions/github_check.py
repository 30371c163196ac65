"""What GitHub needs for this project's workflows, and whether the repository has it.

    python -m mlops_actions.github_check [--markdown] [--offline]

Read from the project's own .github/workflows (PyYAML), so the list follows the workflows and is
never kept by hand: every `vars.X` and `secrets.X` an expression reads (GITHUB_TOKEN aside), the
`environment:` of each job with what its jobs read, the DVC remote of .dvc/config (through `dvc
config`, as `remote check` reads it), and guidance for settings a job's permissions rely on.

Required or optional, per reference: `vars.X || 'value'` (or `secrets.X || github.token`, the
workflow's own token) falls back, so X is optional;
`vars.X == 'value'` is a switch, off until X is set to that value, so optional; anything else
(`${{ vars.X }}`, and a presence test such as `vars.X != ''`, which only skips a step whose
absence then fails a later one) makes X required. An item read in several places is required
when any read requires it. An item read only by jobs of environments is set per environment (a
repository-level value also serves them); one read by any other job, at repository level. An
environment is required when something of its own is: GitHub creates a missing one when a job
first runs in it, but empty, and its secrets can be set only once it exists.

With `gh` installed and logged in, the repository's variables, secrets and environments are
listed (names only: values are never read) and each item says set, missing or not set; exit 1
while a required one is missing. Without `gh`, the list is printed with a line saying it was not
checked, and the exit is 0 unless the DVC remote, checked here, is still the placeholder: working
offline is normal before the repository exists.
"""

import argparse
import json
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .remote import PLACEHOLDER, Remote, read_remote

WORKFLOWS = Path(".github/workflows")
REFERENCE = re.compile(r"(?<![\w.])(vars|secrets)\.([A-Za-z_][A-Za-z0-9_]*)")
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
# What follows a reference: `|| 'value'` or `|| github.token` (a fallback), `== 'value'` (a switch).
FALLBACK = re.compile(r"\s*\|\|\s*(?:'((?:[^']|'')*)'|(github\.token)\b)")
WORKFLOW_TOKEN = "github.token"  # a secret's fallback to the workflow's own token
SWITCH = re.compile(r"\s*==\s*'((?:[^']|'')*)'")
# Every run gets it from GitHub; nothing to set.
PROVIDED = {"GITHUB_TOKEN"}
KINDS = {"vars": "variable", "secrets": "secret"}
# Where the remote is read: CI's pull only warns on a placeholder; its push fails.
DVC_REMOTE_STEP = re.compile(r"\bmake (pull|push)-if-reachable\b")
CREATES_PR = re.compile(r"\bgh pr create\b")
REPOSITORY = "repos/{owner}/{repo}"  # gh fills in the repository of the current directory
STATUS_WIDTH = 10
WIDTH = 100  # the text's, as a terminal shows it


@dataclass(frozen=True)
class Read:
    """One reference to a variable or secret in a workflow."""

    kind: str  # "variable" or "secret"
    name: str
    where: str  # "release.yml (deploy)"; the workflow alone at its top level
    environment: str  # the job's environment, "" when it has none
    fallback: str | None = None  # `vars.X || 'value'`: value
    switch: str | None = None  # `vars.X == 'value'`: value


@dataclass(frozen=True)
class Need:
    """One thing to set on GitHub (or in .dvc/config), in the order to set it."""

    kind: str  # "remote", "variable", "secret" or "environment"
    name: str
    environment: str  # where a variable or secret is set: "" the repository
    required: bool
    why: str  # how required or optional was decided
    used_by: tuple[str, ...]
    command: str
    known: bool | None = None  # set or not, when known without GitHub (the DVC remote)

    @property
    def label(self) -> str:
        scope = f" of environment {self.environment}" if self.environment else ""
        return f"{'DVC remote' if self.kind == 'remote' else self.kind} {self.name}{scope}"


@dataclass(frozen=True)
class Note:
    """A setting the workflows rely on that gh's lists cannot show: guidance, never checked."""

    topic: str
    used_by: tuple[str, ...]
    text: str
    command: str = ""


@dataclass(frozen=True)
class Repository:
    """What gh lists for the repository, names only; "" keys the repository's own level."""

    variables: dict[str, frozenset[str]] = field(default_factory=dict)
    secrets: dict[str, frozenset[str]] = field(default_factory=dict)
    environments: frozenset[str] = frozenset()


# --- reading the workflows ------------------------------------------------------------------


def environment_of(job: dict) -> str:
    """A job's environment name: `environment: name` or `environment: {name: ...}`; "" for none,
    or for a name chosen at run time (an expression names nothing to create beforehand)."""
    value = job.get("environment") or ""
    name = value.get("name", "") if isinstance(value, dict) else value
    return "" if "${{" in str(name) else str(name)


def _strings(node: object, key: str = "") -> Iterator[tuple[str, str]]:
    """Every string of a parsed YAML node, with the key it is the value of."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _strings(value, str(name))
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, key)
    elif isinstance(node, str):
        yield key, node


def _expressions(key: str, text: str) -> list[str]:
    """The expressions of a value: `if:` is one even without `${{ }}`."""
    found = EXPRESSION.findall(text)
    return found or ([text] if key == "if" else [])


def _where(workflow: str, job: str) -> str:
    return f"{workflow} ({job})" if job else workflow


def reads(workflow: str, parsed: dict) -> list[Read]:
    """Every variable and secret the workflow file `workflow` reads, where and how."""
    top = {key: value for key, value in parsed.items() if key != "jobs"}
    parts = [("", "", top)]
    parts += [(name, environment_of(job), job) for name, job in (parsed.get("jobs") or {}).items()]
    found = []
    for job, environment, node in parts:
        for key, text in _strings(node):
            for expression in _expressions(key, text):
                for match in REFERENCE.finditer(expression):
                    if match[2] in PROVIDED:
                        continue
                    rest = expression[match.end() :]
                    fallback, switch = FALLBACK.match(rest), SWITCH.match(rest)
                    found.append(
                        Read(
                            KINDS[match[1]], match[2], _where(workflow, job), environment,
                            _fallback(fallback),
                            switch[1].replace("''", "'") if switch else None,
                        )
                    )  # fmt: skip
    return found


def _fallback(found: re.Match | None) -> str | None:
    """A fallback's value: the quoted text, or `github.token`."""
    if found is None:
        return None
    return found[2] if found[2] else found[1].replace("''", "'")


def _job_steps(parsed: dict) -> Iterator[tuple[str, dict, str]]:
    """(job name, job, the text of its run steps) of each job."""
    for name, job in (parsed.get("jobs") or {}).items():
        runs = "\n".join(str(step.get("run", "")) for step in job.get("steps") or [])
        yield name, job, runs


def _switches(job: dict) -> list[str]:
    """The switches that alone decide whether a job runs (its `if` has no `||`)."""
    condition = str(job.get("if", ""))
    if "||" in condition:
        return []
    return [
        f"{match[2]}={switch[1]}"
        for match in REFERENCE.finditer(condition)
        if (switch := SWITCH.match(condition[match.end() :]))
    ]


# --- what to set ----------------------------------------------------------------------------


def _quote(value: str) -> str:
    return value if re.fullmatch(r"[\w.@/:-]+", value) else f"'{value}'"


def _decide(found: list[Read]) -> tuple[bool, str]:
    """Required, and why, from every read of one item."""
    if any(read.fallback is None and read.switch is None for read in found):
        return True, "required: read without a fallback"
    fallbacks = sorted({read.fallback for read in found if read.fallback is not None})
    switches = sorted({read.switch for read in found if read.switch is not None})
    reasons = []
    if fallbacks:
        shown = [
            "the workflow's token (github.token)" if value == WORKFLOW_TOKEN
            else repr(value) if value else "'' (empty)"
            for value in fallbacks
        ]  # fmt: skip
        reasons.append("falls back to " + " or ".join(shown))
    if switches:
        reasons.append("a switch, on when set to " + " or ".join(map(repr, switches)))
    return False, "optional: " + "; ".join(reasons)


def _command(kind: str, name: str, environment: str, found: list[Read]) -> str:
    scope = f" --env {environment}" if environment else ""
    if kind == "secret":
        return f"gh secret set {name}{scope}"
    # A switch read nowhere else: the value that turns it on.
    switches = {read.switch for read in found}
    value = "<value>"
    if len(switches) == 1 and (switch := switches.pop()) is not None:
        value = _quote(switch)
    return f"gh variable set {name}{scope} --body {value}"


def _used_by(found: list[Read]) -> tuple[str, ...]:
    return tuple(sorted({read.where for read in found}))


def secrets_and_variables(workflows: dict[str, dict]) -> list[Need]:
    """Variables, secrets and environments, from every workflow's reads and jobs."""
    every = [read for name, parsed in workflows.items() for read in reads(name, parsed)]
    by_item: dict[tuple[str, str], list[Read]] = {}
    for read in every:
        by_item.setdefault((read.kind, read.name), []).append(read)
    needs = []
    for (kind, name), found in by_item.items():
        # Read by a job without an environment: set once for the repository (environments see
        # it too). Read only in environments: set in each, as their values differ.
        scopes = [""] if any(not read.environment for read in found) else sorted(
            {read.environment for read in found}
        )  # fmt: skip
        for scope in scopes:
            mine = [read for read in found if not scope or read.environment == scope]
            required, why = _decide(mine)
            command = _command(kind, name, scope, mine)
            needs.append(Need(kind, name, scope, required, why, _used_by(mine), command))
    environments: dict[str, list[str]] = {}
    for workflow, parsed in workflows.items():
        for job_name, job in (parsed.get("jobs") or {}).items():
            if environment := environment_of(job):
                environments.setdefault(environment, []).append(_where(workflow, job_name))
    for environment, jobs in environments.items():
        # GitHub creates a missing environment when a job first names it, but empty: one whose
        # own secrets or variables are required must exist before they can be set.
        required = any(need.required for need in needs if need.environment == environment)
        why = (
            "required: its own secrets and variables can be set only once it exists"
            if required
            else "optional: GitHub creates it when a job first runs in it; create it first to "
            "give it required reviewers"
        )
        command = f"gh api --method PUT {REPOSITORY}/environments/{environment}"
        needs.append(
            Need("environment", environment, "", required, why, tuple(sorted(jobs)), command)
        )
    return needs


def remote_need(workflows: dict[str, dict], remote: Remote | None) -> Need | None:
    """The DVC remote CI pulls from and pushes to: the default remote of the committed
    .dvc/config. Required when a job pushes (a placeholder fails the push); None when no job
    uses a remote."""
    steps = {
        _where(workflow, job_name): set(DVC_REMOTE_STEP.findall(runs))
        for workflow, parsed in workflows.items()
        for job_name, _, runs in _job_steps(parsed)
    }
    used_by = tuple(sorted(where for where, verbs in steps.items() if verbs))
    if not used_by:
        return None
    pushes = sorted(where for where, verbs in steps.items() if "push" in verbs)
    if remote is None or remote.origin != ".dvc/config":
        why = (
            "optional: no remote in .dvc/config, so CI rebuilds the data instead of pulling it; "
            "set a cloud one to keep what CI trains (and give dvc its extra in pyproject.toml)"
        )
        command = ".venv/bin/dvc remote add --default storage s3://<bucket>/<path>"
        return Need("remote", "storage", "", False, why, used_by, command, known=False)
    url = PLACEHOLDER.sub(lambda match: f"<{match[1] or 'location'}>", remote.url)
    placeholder = url != remote.url
    why = f"required: {', '.join(pushes)} fails without it" if pushes else "optional"
    if placeholder:
        why += f"; {remote.url} is still the template's placeholder: set it, commit .dvc/config"
    command = f".venv/bin/dvc remote modify {remote.name} url {url}"
    return Need("remote", remote.name, "", bool(pushes), why, used_by, command, not placeholder)


def notes(workflows: dict[str, dict]) -> list[Note]:
    """Guidance for what a job's permissions or steps need beyond the workflow file."""
    jobs = [
        (_where(workflow, name), job, runs)
        for workflow, parsed in workflows.items()
        for name, job, runs in _job_steps(parsed)
    ]
    packages, attestations, pull_requests, undeclared = [], [], [], []
    for where, job, runs in jobs:
        switches = _switches(job)
        when = f"{where} with {', '.join(switches)}" if switches else where
        permissions = job.get("permissions")
        if not isinstance(permissions, dict):
            undeclared.append(when)
            continue
        if permissions.get("packages") == "write":
            packages.append(when)
        if permissions.get("attestations") == "write":
            attestations.append(when)
        if CREATES_PR.search(runs):
            pull_requests.append(when)
    found = []
    if not undeclared:
        found.append(
            Note(
                "default workflow permissions", ("every job",),
                "every job declares its own permissions, so the repository's default can stay "
                "read-only (Settings > Actions > General > Workflow permissions)",
            )
        )  # fmt: skip
    if packages:
        found.append(
            Note(
                "packages: write", tuple(sorted(packages)),
                "the workflow token pushes the image to ghcr.io/<owner>/<repo>; its first push "
                "creates the package, private when the repository is (a cluster then needs an "
                "image pull secret, or make the package public in its settings); a package of "
                "that name made elsewhere needs this repository given write access (package "
                "settings > Manage Actions access)",
            )
        )  # fmt: skip
    if attestations:
        found.append(
            Note(
                "attestations: write", tuple(sorted(attestations)),
                "artifact attestations work in public repositories on every plan, in private "
                "ones only on GitHub Enterprise Cloud: there the attest steps are skipped unless "
                "the variable ATTEST_PRIVATE is true",
            )
        )  # fmt: skip
    if pull_requests:
        found.append(
            Note(
                "pull requests from Actions", tuple(sorted(pull_requests)),
                "the workflow token may open a pull request only when Settings > Actions > "
                'General allows "GitHub Actions to create and approve pull requests"',
                f"gh api --method PUT {REPOSITORY}/actions/permissions/workflow "
                "-f default_workflow_permissions=read -F can_approve_pull_request_reviews=true",
            )
        )  # fmt: skip
    if any(environment_of(job) for _, job, _ in jobs):
        found.append(
            Note(
                "environments", (),
                "a private repository has environments on GitHub Pro, Team or Enterprise only, "
                "and required reviewers on Enterprise only (a public repository has both on "
                "every plan)",
            )
        )  # fmt: skip
    return found


def project_needs(workflows: dict[str, dict], remote: Remote | None) -> list[Need]:
    """Everything to set, in the order to set it: the DVC remote, the repository's variables and
    secrets, then each environment followed by its own; required before optional."""
    needs = secrets_and_variables(workflows)
    if (need := remote_need(workflows, remote)) is not None:
        needs.append(need)

    def order(need: Need) -> tuple[int, str, bool, bool, str]:
        environment = need.name if need.kind == "environment" else need.environment
        return (
            _section(need),
            environment,
            need.kind != "environment",
            not need.required,
            need.name,
        )

    return sorted(needs, key=order)


# --- checking and saying it -----------------------------------------------------------------


def status(need: Need, repository: Repository | None) -> str:
    """set, missing (required), not set (optional), or unchecked (no gh)."""
    if need.known is not None:
        found = need.known
    elif repository is None:
        return "unchecked"
    elif need.kind == "environment":
        found = need.name in repository.environments
    else:
        listed = repository.variables if need.kind == "variable" else repository.secrets
        found = need.name in listed.get("", frozenset()) or need.name in listed.get(
            need.environment, frozenset()
        )
    if found:
        return "set"
    return "missing" if need.required else "not set"


SECTIONS = {
    0: "1. The DVC remote",
    1: "2. Repository variables and secrets",
    2: "3. Environments, then their own secrets and variables",
}


def _section(need: Need) -> int:
    if need.kind == "remote":
        return 0
    return 2 if need.kind == "environment" or need.environment else 1


def _wrapped(first: str, indent: int, body: str) -> list[str]:
    return textwrap.wrap(
        body, WIDTH, initial_indent=first, subsequent_indent=" " * indent,
        break_long_words=False, break_on_hyphens=False,
    )  # fmt: skip


def text(needs: list[Need], found_notes: list[Note], statuses: list[str]) -> str:
    """The list for a terminal: one block per item, its status first (blank when unchecked)."""
    lines = [f"What GitHub needs for this project, read from {WORKFLOWS}, in the order to set it:"]
    current = None
    indent = STATUS_WIDTH + 2
    for need, state in zip(needs, statuses, strict=True):
        if _section(need) != current:
            current = _section(need)
            lines += ["", SECTIONS[current]]
        shown = "" if state == "unchecked" else state
        lines += _wrapped(f"  {shown:<{STATUS_WIDTH}}", indent, f"{need.label}: {need.why}")
        lines += _wrapped(" " * indent, indent, "used by " + ", ".join(need.used_by))
        lines.append(" " * indent + need.command)  # never wrapped: it is copied as it is
    if found_notes:
        lines += ["", "4. Settings the workflows rely on (guidance, not checked)"]
        for note in found_notes:
            used = f" ({', '.join(note.used_by)})" if note.used_by else ""
            lines += _wrapped("  - ", 4, f"{note.topic}{used}: {note.text}")
            if note.command:
                lines.append(f"    {note.command}")
    return "\n".join(lines) + "\n"


def _cell(value: str) -> str:
    return value.replace("|", "\\|")


def markdown(needs: list[Need], found_notes: list[Note], statuses: list[str] | None) -> str:
    """The same list as a markdown table (the docs include it), statuses when checked."""
    head = ["status"] if statuses else []
    head += ["what", "needed", "used by", "set it with"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for index, need in enumerate(needs):
        row = [statuses[index]] if statuses else []
        scope = f" of `{need.environment}`" if need.environment else ""
        kind = "DVC remote" if need.kind == "remote" else need.kind
        row += [
            f"{kind} `{need.name}`{scope}",
            _cell(need.why),
            ", ".join(f"`{where}`" for where in need.used_by),
            f"`{_cell(need.command)}`",
        ]
        lines.append("| " + " | ".join(row) + " |")
    if found_notes:
        lines.append("")
        for note in found_notes:
            used = f" ({', '.join(f'`{where}`' for where in note.used_by)})" if note.used_by else ""
            command = f": `{note.command}`" if note.command else ""
            lines.append(f"- **{note.topic}**{used}: {note.text}{command}")
    return "\n".join(lines) + "\n"


def summary(needs: list[Need], statuses: list[str], unchecked: str | None) -> str:
    """The verdict, in one line."""
    missing = [
        need.label for need, state in zip(needs, statuses, strict=True) if state == "missing"
    ]
    said = f"{len(missing)} required missing: {', '.join(missing)}" if missing else ""
    if unchecked:
        return f"github-check: not checked against GitHub: {unchecked}" + (
            f"; checked here, {said}" if said else ""
        )
    if said:
        return f"github-check: {said}"
    # gh lists the repository's own values; an organisation's are not in its answers.
    return "github-check: everything required is set (organisation-level values are not listed)"


# --- I/O ------------------------------------------------------------------------------------


def load_workflows(folder: Path) -> dict[str, dict]:
    """Every workflow file of `folder`, parsed, by file name."""
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    return {path.name: yaml.safe_load(path.read_text(encoding="utf-8")) or {} for path in files}


def read_project(root: Path) -> tuple[list[Need], list[Note]]:
    """What the project at `root` needs: its workflows, and the DVC remote dvc reads there."""
    workflows = load_workflows(root / WORKFLOWS)
    return project_needs(workflows, read_remote(cwd=root)), notes(workflows)


class GhFailed(Exception):
    """gh answered with an error; the exception says the call and gh's first line."""


def _gh(*args: str) -> str:
    done = subprocess.run(["gh", *args], capture_output=True, text=True)
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or [f"exited {done.returncode}"])[0]
        raise GhFailed(f"gh {' '.join(args)}: {message}")
    return done.stdout


def _names(*args: str) -> frozenset[str]:
    return frozenset(item["name"] for item in json.loads(_gh(*args, "--json", "name") or "[]"))


def gh_unavailable() -> str | None:
    """Why gh cannot check the repository, or None when it can."""
    if shutil.which("gh") is None:
        return "gh is not installed (https://cli.github.com), so set the list above by hand"
    if subprocess.run(["gh", "auth", "status"], capture_output=True).returncode != 0:
        return "gh is not logged in (gh auth login)"
    return None


def read_repository(needs: list[Need]) -> Repository:
    """The repository's variables, secrets and environments, and those of each environment
    the needs name that exists (gh refuses to list an environment that does not)."""
    answer = json.loads(_gh("api", f"{REPOSITORY}/environments?per_page=100"))
    environments = frozenset(item["name"] for item in answer.get("environments", []))
    named = sorted({need.environment for need in needs if need.environment} & environments)
    variables = {"": _names("variable", "list")}
    secrets = {"": _names("secret", "list")}
    for environment in named:
        variables[environment] = _names("variable", "list", "--env", environment)
        secrets[environment] = _names("secret", "list", "--env", environment)
    return Repository(variables, secrets, environments)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="github-check", description=__doc__.split("\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--offline", action="store_true", help="list only, without asking gh")
    args = parser.parse_args(argv)
    needs, found_notes = read_project(Path("."))
    unchecked = "asked not to (--offline)" if args.offline else gh_unavailable()
    repository, failed = None, None
    if unchecked is None:
        try:
            repository = read_repository(needs)
        except GhFailed as err:  # logged in, yet no answer: say so rather than guess
            failed = f"{err} (is the repository on GitHub, and origin pointing at it?)"
    statuses = [status(need, repository) for need in needs]
    checked = None if repository is None else statuses
    listed = markdown(needs, found_notes, checked) if args.markdown else text(
        needs, found_notes, statuses
    )  # fmt: skip
    print(listed, flush=True)
    code = 1 if failed or "missing" in statuses else 0
    print(summary(needs, statuses, unchecked or failed), file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
