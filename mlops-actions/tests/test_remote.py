"""The DVC remote checks: a placeholder URL named in one line with the value to set, and why a
`dvc pull` failed, read from DVC's own messages (shaped as DVC 3 prints them)."""

import pytest

from mlops_actions.remote import (
    Pull,
    Remote,
    annotation,
    classify_pull,
    default_remote,
    placeholder_advice,
    pull_annotation,
)

LISTING = """\
.dvc/config\tremote.storage.url=s3://CHANGE-ME-bucket/demo
.dvc/config\tcore.remote=storage
"""
OUTPUTS = ["models/model.onnx", "data/raw/dataset.csv", "models/model.joblib"]
MISSING = "\n".join(
    [
        "WARNING: Some of the cache files do not exist neither locally nor on remote."
        " Missing cache files:",
        "md5: 0d7b0734b94cb6a1216b38e65c8ab0ac",
        "Everything is up to date.",
        "ERROR: failed to pull data from the cloud - Checkout failed for following targets:",
        *OUTPUTS,
        "Is your cache up to date?",
        "<https://error.dvc.org/missing-files>",
    ]
)
NO_CONNECTION = (
    "ERROR: failed to connect to s3 (bucket/demo/files/md5) - Unable to locate credentials\n"
    "ERROR: failed to pull data from the cloud - 6 files failed to download\n"
)


def test_the_default_remote_is_read_with_the_file_that_sets_its_url():
    assert default_remote(LISTING) == Remote("storage", "s3://CHANGE-ME-bucket/demo", ".dvc/config")
    local = LISTING + ".dvc/config.local\tremote.storage.url=/mnt/dvc\n"
    assert default_remote(local) == Remote("storage", "/mnt/dvc", ".dvc/config.local")
    assert default_remote(".dvc/config\tcore.autostage=true\n") is None


@pytest.mark.parametrize(
    ("url", "value", "example"),
    [
        ("s3://CHANGE-ME-bucket/demo", "bucket", "s3://<bucket>/<path>"),
        ("gs://CHANGE-ME-bucket/demo", "bucket", "gs://<bucket>/<path>"),
        ("azure://CHANGE-ME-container/demo", "container", "azure://<container>/<path>"),
        ("ssh://CHANGE-ME-host/srv/dvc-storage/demo", "host", "ssh://<host>/<path>"),
    ],
)
def test_a_placeholder_url_names_the_value_to_set(url, value, example):
    advice = placeholder_advice(Remote("storage", url, ".dvc/config"))
    assert advice == (
        f"DVC remote 'storage' is still {url}: set your {value} in .dvc/config "
        f"(url = {example}) and commit it; see README, 'DVC remote'"
    )


def test_a_real_url_passes_and_a_local_file_is_not_to_be_committed():
    assert placeholder_advice(Remote("storage", "s3://models/demo", ".dvc/config")) is None
    advice = placeholder_advice(Remote("storage", "s3://CHANGE-ME-bucket/x", ".dvc/config.local"))
    assert "in .dvc/config.local (url" in advice and "commit" not in advice


def test_outputs_the_remote_lacks_are_missing_not_an_error():
    pull = classify_pull(1, MISSING)
    assert pull == Pull("missing", missing=tuple(sorted(OUTPUTS)))
    assert pull_annotation(pull) == (
        "::notice title=Incomplete DVC pull::3 outputs are not in the remote yet "
        "(data/raw/dataset.csv, models/model.joblib, models/model.onnx); dvc repro rebuilds them"
    )


def test_many_missing_outputs_are_counted_past_the_first_five():
    many = tuple(f"data/part-{i}.csv" for i in range(7))
    line = pull_annotation(Pull("missing", missing=many))
    assert "(data/part-0.csv, data/part-1.csv, data/part-2.csv, data/part-3.csv, " in line
    assert "data/part-4.csv and 2 more)" in line
    assert "1 output is not" in pull_annotation(Pull("missing", missing=many[:1]))


@pytest.mark.parametrize(
    ("returncode", "output", "error"),
    [
        (1, NO_CONNECTION, "failed to connect to s3 (bucket/demo/files/md5) - Unable to locate"),
        (255, "ERROR: unexpected error - s3 is supported, but requires 'dvc-s3'\n", "unexpected"),
        # A checkout that fails with every file in the remote is not the remote's fault.
        (1, MISSING.replace("do not exist neither locally nor on remote", "x"), "failed to pull"),
        (251, "", "dvc pull exited 251"),
    ],
)
def test_other_failures_quote_dvcs_first_error(returncode, output, error):
    pull = classify_pull(returncode, output)
    assert pull.outcome == "failed" and pull.error.startswith(error)
    line = pull_annotation(pull)
    assert line.startswith(f"::warning title=DVC remote error::dvc pull failed: {error}")


def test_a_complete_pull_needs_no_annotation():
    assert classify_pull(0, "3 files fetched\n") == Pull("pulled")
    assert pull_annotation(Pull("pulled")) is None


def test_annotations_stay_on_one_line():
    assert annotation("notice", "T", "50% done\nnext") == "::notice title=T::50%25 done%0Anext"
