"""The DVC remote: is its URL set, and why did a pull in CI bring less than everything?

  remote check [--warn]     the default remote's URL still holds the template's CHANGE-ME
                            placeholder: one line naming the value to set, exit 1 (--warn: exit 0,
                            for `make setup`, whose first run needs no remote)
  remote pull-if-reachable  CI: pull, or one GitHub annotation naming why not; always goes on,
                            since the pipeline rebuilds what is missing
  remote push-if-reachable  CI: push, or one GitHub annotation naming why not (exit 1 when the
                            remote is a placeholder or the job has no credentials)

CREDENTIALS is the outcome of the workflow's credentials step ("success" when it set them up).
DVC is asked through its CLI only: `dvc config --list --show-origin` for the default remote, and
`dvc pull`, whose failure is classified from DVC's own messages (see `classify_pull`).
"""

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PLACEHOLDER = re.compile(r"CHANGE-ME-?([A-Za-z]*)")
SEE_README = "see README, 'DVC remote'"
# dvc_data's fetch logs this warning for outputs that are neither in the cache nor in the remote;
# the checkout that follows then fails for them (dvc.exceptions.CheckoutError, exit 1).
MISSING_WARNING = "do not exist neither locally nor on remote"
CHECKOUT_FAILED = "Checkout failed for following targets:"
CHECKOUT_HINT = "Is your cache up to date?"
# Outputs a notice names before it only counts the rest.
NAMED_OUTPUTS = 5
# The annotations' titles.
NO_REMOTE = "No DVC remote"
NOT_SET = "DVC remote not set"
NO_CREDENTIALS = "DVC remote not reachable"
PULL_FAILED = "DVC remote error"
INCOMPLETE = "Incomplete DVC pull"


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    origin: str  # the config file that sets the URL, relative to the repository


@dataclass(frozen=True)
class Pull:
    """What a finished `dvc pull` says: "pulled", "missing" (the outputs the remote lacks) or
    "failed" (with DVC's error line)."""

    outcome: str
    error: str = ""
    missing: tuple[str, ...] = ()


def default_remote(config_listing: str) -> Remote | None:
    """The default remote in `dvc config --list --show-origin` output ("<file>\\t<key>=<value>"
    lines). DVC lists its levels system, global, repository, local: a later line overrides."""
    settings: dict[str, tuple[str, str]] = {}
    for line in config_listing.splitlines():
        origin, _, setting = line.partition("\t")
        key, found, value = setting.partition("=")
        if found:
            settings[key] = (value, origin)
    name = settings.get("core.remote", ("", ""))[0]
    if not name:
        return None
    url, origin = settings.get(f"remote.{name}.url", ("", ""))
    return Remote(name, url, origin)


def placeholder_advice(remote: Remote) -> str | None:
    """One line naming the value to set when the URL is still the template's placeholder."""
    match = PLACEHOLDER.search(remote.url)
    if match is None:
        return None
    value = match.group(1) or "location"
    scheme = remote.url.partition("://")[0]
    commit = " and commit it" if remote.origin == ".dvc/config" else ""
    return (
        f"DVC remote '{remote.name}' is still {remote.url}: set your {value} in {remote.origin} "
        f"(url = {scheme}://<{value}>/<path>){commit}; {SEE_README}"
    )


def classify_pull(returncode: int, output: str) -> Pull:
    """Why `dvc pull` failed, from its exit code and output (stdout and stderr together).

    DVC fetches, then checks out. Outputs the remote lacks are a warning during the fetch and then
    a CheckoutError: that alone is "missing" (the remote answered; dvc repro rebuilds them). Any
    other failure is "failed", with DVC's first error line: a remote it could not list ("failed to
    connect to s3 (...) - <cause>", expired or rejected credentials among them), files that failed
    to download, a missing plugin, a configuration error.
    """
    if returncode == 0:
        return Pull("pulled")
    lines = output.splitlines()
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR: ")]
    if MISSING_WARNING in output and len(errors) == 1 and errors[0].endswith(CHECKOUT_FAILED):
        start = lines.index(f"ERROR: {errors[0]}") + 1
        end = next((i for i in range(start, len(lines)) if lines[i] == CHECKOUT_HINT), len(lines))
        return Pull("missing", missing=tuple(sorted(lines[start:end])))
    return Pull("failed", error=errors[0] if errors else f"dvc pull exited {returncode}")


def annotation(level: str, title: str, message: str) -> str:
    """A GitHub Actions workflow command: one line whatever the message holds."""
    escaped = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::{level} title={title}::{escaped}"


def pull_annotation(pull: Pull) -> str | None:
    """The line CI shows when a pull brought less than everything; None when it did not."""
    if pull.outcome == "missing":
        count = len(pull.missing)
        named = ", ".join(pull.missing[:NAMED_OUTPUTS])
        rest = f" and {count - NAMED_OUTPUTS} more" if count > NAMED_OUTPUTS else ""
        outputs = "1 output is" if count == 1 else f"{count} outputs are"
        message = f"{outputs} not in the remote yet ({named}{rest}); dvc repro rebuilds them"
        return annotation("notice", INCOMPLETE, message)
    if pull.outcome == "failed":
        message = (
            f"dvc pull failed: {pull.error}; the pipeline rebuilds from what it can get "
            f"(check the remote's URL and credentials; {SEE_README})"
        )
        return annotation("warning", PULL_FAILED, message)
    return None


def read_remote(cwd: Path | None = None) -> Remote | None:
    """The default remote as dvc reads it in `cwd` (default: here)."""
    listing = subprocess.run(
        ["dvc", "config", "--list", "--show-origin"], capture_output=True, text=True, cwd=cwd
    )
    if listing.returncode != 0:
        sys.exit(listing.stderr.strip() or f"dvc config exited {listing.returncode}")
    return default_remote(listing.stdout)


def check(warn: bool) -> int:
    remote = read_remote()
    advice = placeholder_advice(remote) if remote else None
    if advice:
        print(advice, file=sys.stderr)
    return 1 if advice and not warn else 0


def pull_if_reachable(credentials: str, targets: list[str] | None = None) -> int:
    remote = read_remote()
    if remote is None:
        message = "none is configured here; the pipeline rebuilds what it needs"
        print(annotation("notice", NO_REMOTE, message))
    elif advice := placeholder_advice(remote):
        print(annotation("warning", NOT_SET, advice))
    elif credentials != "success":
        message = (
            "no credentials here (fork PRs never get them); "
            "the pipeline rebuilds from what it can get"
        )
        print(annotation("notice", NO_CREDENTIALS, message))
    else:
        pull = subprocess.run(
            ["dvc", "pull", *(targets or [])], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output = pull.stdout.decode(errors="replace")
        print(output, end="", flush=True)
        if line := pull_annotation(classify_pull(pull.returncode, output)):
            print(line)
    return 0


def push_if_reachable(credentials: str, targets: list[str] | None = None) -> int:
    remote = read_remote()
    if remote is None:
        message = "none is configured here; set one (README) to keep what CI trains"
        print(annotation("notice", NO_REMOTE, message))
        return 0
    if advice := placeholder_advice(remote):
        print(annotation("error", NOT_SET, advice))
        return 1
    if credentials != "success":
        print(annotation("error", NO_CREDENTIALS, f"credentials missing; {SEE_README}"))
        return 1
    return subprocess.run(["dvc", "push", "--run-cache", *(targets or [])]).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="remote", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check_parser = commands.add_parser("check", help="refuse a placeholder remote URL")
    check_parser.add_argument("--warn", action="store_true", help="say so, but exit 0")
    pull_parser = commands.add_parser("pull-if-reachable", help="pull, or say why not (CI)")
    pull_parser.add_argument("targets", nargs="*", help="only these DVC-tracked paths")
    push_parser = commands.add_parser("push-if-reachable", help="push, or say why not (CI)")
    push_parser.add_argument("targets", nargs="*", help="only these DVC-tracked paths")
    args = parser.parse_args(argv)
    credentials = os.environ.get("CREDENTIALS") or "success"  # unset: no credentials step
    if args.command == "check":
        return check(args.warn)
    if args.command == "pull-if-reachable":
        return pull_if_reachable(credentials, args.targets)
    return push_if_reachable(credentials, args.targets)


if __name__ == "__main__":
    sys.exit(main())
