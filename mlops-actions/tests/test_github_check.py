"""What GitHub needs, read from workflows: each reference classified by how it is read, scoped to
the repository or an environment, checked against what gh lists, and said in one line."""

import yaml

from mlops_actions.github_check import (
    Need,
    Read,
    Repository,
    markdown,
    notes,
    project_needs,
    reads,
    remote_need,
    status,
    summary,
)
from mlops_actions.remote import Remote

BUILD = yaml.safe_load("""
on: {push: {branches: [main]}}
permissions: {}
env:
  TOP: ${{ vars.TOP_LEVEL }}
jobs:
  build:
    if: vars.ROLE != '' && github.event.pull_request.head.repo.fork != true
    permissions: {contents: read, packages: write}
    steps:
      - run: make push-if-reachable
        env:
          ROLE: ${{ vars.ROLE }}
          TOKEN: ${{ secrets.GITHUB_TOKEN }}
          SIZE: ${{ vars.SIZE || 'large' }}
          PUBLISH: ${{ vars.PUBLISH == 'true' && '--publish' || '--no-publish' }}
          QUOTED: ${{ vars.QUOTED || 'it''s' }}
  deploy:
    environment: production
    permissions: {contents: read}
    steps:
      - run: make pull-if-reachable
        env:
          KUBECONFIG: ${{ secrets.KUBECONFIG }}
          CANARY: ${{ vars.CANARY || '300' }}
          SIZE: ${{ vars.SIZE }}
  stage:
    environment: {name: staging, url: "${{ vars.STAGING_URL }}"}
    permissions: {contents: read}
    steps:
      - run: echo
        env:
          KUBECONFIG: ${{ secrets.KUBECONFIG }}
          CANARY: ${{ vars.CANARY || '60' }}
  mark:
    environment: production
    permissions: {contents: write}
    steps:
      - run: gh release edit --latest
  approve:
    environment: review
    permissions: {}
    steps:
      - run: echo approved
  open-pr:
    if: needs.build.outputs.changed == 'true' && vars.OPENS_PR == 'true'
    permissions: {contents: write, pull-requests: write}
    steps:
      - run: gh pr create --fill
""")


def by_name(found: list[Read]) -> dict[str, list[Read]]:
    grouped: dict[str, list[Read]] = {}
    for read in found:
        grouped.setdefault(read.name, []).append(read)
    return grouped


def test_every_reference_is_read_with_how_it_is_read_and_github_token_is_left_out():
    found = by_name(reads("build.yml", BUILD))
    assert "GITHUB_TOKEN" not in found
    assert found["TOP_LEVEL"] == [Read("variable", "TOP_LEVEL", "build.yml", "")]
    # `if:` is an expression without ${{ }}; a presence test is no fallback.
    assert {(read.where, read.fallback, read.switch) for read in found["ROLE"]} == {
        ("build.yml (build)", None, None)
    }
    assert [read.fallback for read in found["SIZE"]] == ["large", None]
    assert [read.fallback for read in found["QUOTED"]] == ["it's"]
    # `== 'true' && a || b`: a switch, not a fallback.
    assert [(read.switch, read.fallback) for read in found["PUBLISH"]] == [("true", None)]
    assert {read.environment for read in found["KUBECONFIG"]} == {"production", "staging"}
    assert found["STAGING_URL"][0].environment == "staging"


def needs_by_label() -> dict[str, Need]:
    remote = Remote("storage", "s3://CHANGE-ME-bucket/demo", ".dvc/config")
    return {need.label: need for need in project_needs({"build.yml": BUILD}, remote)}


def test_required_unless_every_read_falls_back_or_is_a_switch():
    needs = needs_by_label()
    assert needs["variable ROLE"].required
    assert needs["variable SIZE"].required  # one read without a fallback is enough
    assert needs["variable SIZE"].why == "required: read without a fallback"
    publish = needs["variable PUBLISH"]
    assert not publish.required and publish.command == "gh variable set PUBLISH --body true"
    assert publish.why == "optional: a switch, on when set to 'true'"
    assert needs["variable QUOTED"].why == 'optional: falls back to "it\'s"'


def test_items_read_only_in_environments_are_set_per_environment():
    needs = needs_by_label()
    production = needs["secret KUBECONFIG of environment production"]
    assert production.command == "gh secret set KUBECONFIG --env production"
    assert production.used_by == ("build.yml (deploy)",)
    assert needs["secret KUBECONFIG of environment staging"].required
    # Each environment's own fallback.
    assert needs["variable CANARY of environment production"].why == "optional: falls back to '300'"
    assert needs["variable CANARY of environment staging"].why == "optional: falls back to '60'"
    # Read outside any environment too: one repository variable.
    assert needs["variable SIZE"].environment == ""
    assert needs["variable SIZE"].used_by == ("build.yml (build)", "build.yml (deploy)")
    assert needs["environment staging"].command == (
        "gh api --method PUT repos/{owner}/{repo}/environments/staging"
    )
    # Required when something of its own is; GitHub creates an empty one on its first job.
    assert needs["environment production"].required
    assert needs["environment production"].used_by == ("build.yml (deploy)", "build.yml (mark)")
    assert not needs["environment review"].required
    assert needs["environment review"].why.startswith("optional: GitHub creates it")


def test_the_order_is_remote_then_repository_then_each_environment_with_its_own():
    labels = list(needs_by_label())
    assert labels[0] == "DVC remote storage"
    assert labels.index("variable ROLE") < labels.index("environment production")
    assert (
        labels.index("variable ROLE")
        < labels.index("variable SIZE")
        < labels.index("variable PUBLISH")
    )  # required first, by name; then optional
    production = labels.index("environment production")
    staging = labels.index("environment staging")
    assert labels[production + 1] == "secret KUBECONFIG of environment production"
    assert (
        production < staging and labels[staging + 1] == "secret KUBECONFIG of environment staging"
    )


def test_the_dvc_remote_placeholder_is_missing_without_asking_github():
    workflows = {"build.yml": BUILD}
    placeholder = remote_need(
        workflows, Remote("storage", "s3://CHANGE-ME-bucket/x", ".dvc/config")
    )
    assert placeholder is not None and placeholder.required and placeholder.known is False
    assert placeholder.command == ".venv/bin/dvc remote modify storage url s3://<bucket>/x"
    assert placeholder.used_by == ("build.yml (build)", "build.yml (deploy)")
    assert status(placeholder, None) == "missing"
    real = remote_need(workflows, Remote("storage", "s3://data/x", ".dvc/config"))
    assert real is not None and status(real, None) == "set"
    # A local remote (.dvc/config.local) or none: CI rebuilds, so it is optional.
    local = remote_need(workflows, Remote("local", "/srv/dvc", ".dvc/config.local"))
    assert local is not None and not local.required and status(local, None) == "not set"
    assert (
        remote_need({"ci.yml": {"jobs": {"test": {"steps": [{"run": "make test"}]}}}}, None) is None
    )


def test_status_reads_gh_lists_and_a_repository_value_serves_an_environment():
    needs = needs_by_label()
    repository = Repository(
        variables={"": frozenset({"ROLE"}), "production": frozenset({"CANARY"})},
        secrets={"": frozenset({"KUBECONFIG"})},
        environments=frozenset({"production"}),
    )
    assert status(needs["variable ROLE"], repository) == "set"
    assert status(needs["variable SIZE"], repository) == "missing"
    assert status(needs["variable PUBLISH"], repository) == "not set"
    assert status(needs["variable CANARY of environment production"], repository) == "set"
    assert status(needs["variable CANARY of environment staging"], repository) == "not set"
    assert status(needs["secret KUBECONFIG of environment staging"], repository) == "set"
    assert status(needs["environment staging"], repository) == "missing"
    assert status(needs["variable ROLE"], None) == "unchecked"


def test_the_verdict_is_one_line():
    needs = [needs_by_label()["variable ROLE"], needs_by_label()["variable PUBLISH"]]
    assert summary(needs, ["missing", "not set"], None) == (
        "github-check: 1 required missing: variable ROLE"
    )
    assert summary(needs, ["set", "not set"], None).startswith(
        "github-check: everything required is set"
    )
    assert summary(needs, ["unchecked", "unchecked"], "gh is not logged in (gh auth login)") == (
        "github-check: not checked against GitHub: gh is not logged in (gh auth login)"
    )


def test_notes_come_from_permissions_and_steps():
    found = {note.topic: note for note in notes({"build.yml": BUILD})}
    assert found["packages: write"].used_by == ("build.yml (build)",)
    assert found["pull requests from Actions"].used_by == (
        "build.yml (open-pr) with OPENS_PR=true",
    )
    assert "can_approve_pull_request_reviews=true" in found["pull requests from Actions"].command
    assert "environments" in found and "default workflow permissions" in found
    assert "attestations: write" not in found


def test_markdown_is_one_row_per_item_with_a_status_column_only_when_checked():
    needs = list(needs_by_label().values())
    table = markdown(needs, [], None).splitlines()
    assert table[0] == "| what | needed | used by | set it with |"
    assert len(table) == 2 + len(needs)
    assert "| DVC remote `storage` |" in table[2]
    checked = markdown(needs, [], ["missing"] * len(needs)).splitlines()
    assert checked[0].startswith("| status | what |") and checked[2].startswith("| missing |")


def test_a_secret_that_falls_back_to_the_workflow_token_is_optional():
    workflow = yaml.safe_load("""
jobs:
  update:
    steps:
      - env:
          GH_TOKEN: ${{ secrets.TEMPLATE_UPDATE_TOKEN || github.token }}
""")
    (read,) = reads("template-update.yml", workflow)
    assert read.fallback == "github.token"
    remote = Remote("storage", "s3://bucket/demo", ".dvc/config")
    (need,) = [n for n in project_needs({"t.yml": workflow}, remote) if n.kind == "secret"]
    assert not need.required
    assert need.why == "optional: falls back to the workflow's token (github.token)"
