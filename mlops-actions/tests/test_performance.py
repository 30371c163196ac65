"""Live performance (performance.py): labels joined back to prediction records and to the server's
prediction logs, every row that does not join counted in one line, and a verdict that trips on a
real drop (a segment whose labels flipped: concept drift with unchanged inputs) but not on noise."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_actions import champion, performance
from mlops_actions.export import convert
from mlops_actions.split import record_keys

PROBA = performance.PROBABILITY_PREFIX


@pytest.fixture(scope="session")
def served(train, parts, schema, params):
    """The project's model (exported) and rows it never trained on: the holdout and test split."""
    model = train(parts.train, schema, params["train"], params["base"]["seed"])
    onnx_model = convert(model, schema, model_version="1.2.0", git_sha="0" * 40)
    unseen = pd.concat([parts.test, parts.holdout])
    return onnx_model, unseen, parts.holdout


def records(onnx_model: bytes, frame: pd.DataFrame, schema, version: str) -> pd.DataFrame:
    """Prediction records of `frame` as `make score` writes them."""
    predictions = champion.onnx_predictions(onnx_model, frame, schema)
    out = pd.DataFrame({"key": record_keys(frame, schema).to_numpy()})
    out["model_version"], out["model_sha256"] = version, "ab" * 32
    out["scored_at"] = "2026-12-07T10:00:00.000+00:00"
    if schema.labels is None:
        out["value"] = predictions.predicted
    else:
        out["label"] = predictions.predicted
        for index, label in enumerate(predictions.classes):
            out[f"{PROBA}{label}"] = predictions.probabilities[:, index]
    return out


def workspace(root: Path, project: Path, holdout_scores: dict) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "metrics").mkdir()
    for name in ("params.yaml", "data/schema.yaml", "pyproject.toml"):
        shutil.copy(project / name, root / name)
    (root / "metrics/holdout.json").write_text(json.dumps(holdout_scores))
    return root


def labels_of(frame: pd.DataFrame, schema) -> pd.DataFrame:
    return frame[[*schema.features, schema.target]]


def test_labels_joined_back_give_the_model_s_own_metrics(
    tmp_path, monkeypatch, project, schema, params, served
):
    onnx_model, unseen, holdout = served
    expected = champion.scores(champion.onnx_predictions(onnx_model, unseen, schema), schema)
    holdout_scores = champion.scores(champion.onnx_predictions(onnx_model, holdout, schema), schema)
    root = workspace(tmp_path, project, holdout_scores)
    records(onnx_model, unseen, schema, "1.2.0").to_csv(root / "scored.csv", index=False)
    labels_of(unseen, schema).to_csv(root / "labels.csv", index=False)
    monkeypatch.chdir(root)
    code = performance.main(["--predictions", "scored.csv", "--labels", "labels.csv"])
    report = json.loads((root / "performance/report.json").read_text())
    assert code == 0 and report["degraded"] is False, report["verdict"]
    assert report["counts"]["joined"] == len(unseen) and report["notes"] == []
    [version] = report["versions"]
    assert version["version"] == "1.2.0" and version["rows"] == len(unseen)
    for name, value in expected.items():
        assert version["scores"][name] == pytest.approx(value, abs=1e-6), name
        low, high = version["intervals"][name]
        assert low <= version["scores"][name] <= high
    head = (root / "performance/report.md").read_text().splitlines()[0]
    assert head == f"## ✅ Live performance: model 1.2.0 as expected ({project.name})"


def flipped(frame: pd.DataFrame, schema, share: float = 0.6) -> pd.DataFrame:
    """Concept drift with unchanged inputs: the labels of most rows turn (another class, or a
    target moved by three standard deviations); the features stay as they were."""
    frame = frame.copy()
    turn = np.random.default_rng(0).random(len(frame)) < share
    target = frame[schema.target]
    if schema.labels is None:
        moved = pd.to_numeric(target) + 3 * pd.to_numeric(target).std()
        frame[schema.target] = np.where(turn, moved, pd.to_numeric(target))
    else:
        labels = list(schema.labels)
        other = target.astype(str).map(
            lambda label: labels[(labels.index(label) + 1) % len(labels)]
        )
        frame[schema.target] = np.where(turn, other, target.astype(str))
    return frame


def test_a_segment_whose_labels_flipped_is_significantly_below(
    tmp_path, monkeypatch, project, schema, served
):
    onnx_model, unseen, holdout = served
    holdout_scores = champion.scores(champion.onnx_predictions(onnx_model, holdout, schema), schema)
    root = workspace(tmp_path, project, holdout_scores)
    records(onnx_model, unseen, schema, "1.2.0").to_csv(root / "scored.csv", index=False)
    labels_of(flipped(unseen, schema), schema).to_csv(root / "labels.csv", index=False)
    monkeypatch.chdir(root)
    code = performance.main(["--predictions", "scored.csv", "--labels", "labels.csv"])
    report = json.loads((root / "performance/report.json").read_text())
    assert code == 1 and report["degraded"] is True
    assert "significantly below, beyond the allowed drop" in report["verdict"]
    head = (root / "performance/report.md").read_text().splitlines()[0]
    metric = report["metric"]
    assert head == (
        f"## ❌ Live performance: `{metric}` of model 1.2.0 significantly below its reference "
        f"({project.name})"
    )
    # PERFORMANCE_FAIL=off reports the same and exits 0.
    assert (
        performance.main(["--predictions", "scored.csv", "--labels", "labels.csv", "--no-fail"])
        == 0
    )


def test_what_does_not_join_is_counted_in_one_line_each(
    tmp_path, monkeypatch, project, schema, served
):
    onnx_model, unseen, _holdout = served
    root = workspace(tmp_path, project, {})
    (root / "metrics/scores.json").write_text(json.dumps({"accuracy": 0.5, "rmse": 1.0}))
    scored = records(onnx_model, unseen, schema, "1.2.0")
    # The first 5 rows scored twice; the last 7 rows never labelled.
    pd.concat([scored, scored.head(5)]).to_csv(root / "scored.csv", index=False)
    labels = labels_of(unseen.iloc[:-7], schema)
    extra = labels_of(unseen.head(3), schema).copy()
    # 3 labels of rows never scored: their features differ.
    first = schema.numeric[0] if schema.numeric else None
    if first:
        extra[first] = pd.to_numeric(extra[first]) + 1e6
    contradiction = labels.head(1).copy()
    if schema.labels is None:
        contradiction[schema.target] = pd.to_numeric(contradiction[schema.target]) + 1
    else:
        labels_list = list(schema.labels)
        contradiction[schema.target] = [
            labels_list[(labels_list.index(str(v)) + 1) % len(labels_list)]
            for v in contradiction[schema.target]
        ]
    parts = [labels, contradiction] + ([extra] if first else [])
    pd.concat(parts).to_csv(root / "labels.csv", index=False)
    monkeypatch.chdir(root)
    assert performance.main(["--predictions", "scored.csv", "--labels", "labels.csv"]) in (0, 1)
    report = json.loads((root / "performance/report.json").read_text())
    counts = report["counts"]
    assert counts["predictions_repeated"] == 5
    assert counts["labels_conflicting"] == 1
    assert counts["predictions_without_labels"] == 7 + 1  # and the contradicted row's
    if first:
        assert counts["labels_without_predictions"] == 3
    assert counts["joined"] == len(unseen) - 7 - 1
    assert all(isinstance(note, str) and "\n" not in note for note in report["notes"])
    assert "reference" in report and "metrics/scores.json" in report["reference"]["source"]


def test_the_server_s_prediction_logs_join_by_their_features(
    tmp_path, monkeypatch, project, schema, served
):
    """A logged prediction carries its features, not a key: it is keyed as a scored row is."""
    onnx_model, unseen, _holdout = served
    root = workspace(tmp_path, project, {"accuracy": 0.9, "rmse": 50.0})
    scored = records(onnx_model, unseen, schema, "1.1.0")
    lines = []
    for (_, row), (_, record) in zip(unseen.iterrows(), scored.iterrows(), strict=True):
        features = {
            name: (
                None
                if pd.isna(row[name])
                else row[name].item()
                if hasattr(row[name], "item")
                else row[name]
            )
            for name in schema.features
        }
        if schema.labels is None:
            outputs = {"value": float(record["value"])}
        else:
            outputs = {
                "label": record["label"],
                "probabilities": {
                    label: float(record[f"{PROBA}{label}"]) for label in schema.labels
                },
            }
        lines.append(json.dumps({
            "time": "2026-12-07T10:00:00.000+00:00", "request_id": "r", "model_version": "1.1.0",
            "features": features, "outputs": outputs, "latency_ms": 1.0,
        }))  # fmt: skip
    (root / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    labels_of(unseen, schema).to_csv(root / "labels.csv", index=False)
    monkeypatch.chdir(root)
    performance.main(["--predictions", "predictions.jsonl", "--labels", "labels.csv"])
    report = json.loads((root / "performance/report.json").read_text())
    assert report["counts"]["joined"] == len(unseen), report["notes"]


def test_a_labels_file_without_the_target_is_one_line(
    tmp_path, monkeypatch, project, schema, served, capsys
):
    onnx_model, unseen, _ = served
    root = workspace(tmp_path, project, {"accuracy": 0.9})
    records(onnx_model, unseen, schema, "1.2.0").to_csv(root / "scored.csv", index=False)
    unseen[list(schema.features)].to_csv(root / "labels.csv", index=False)
    monkeypatch.chdir(root)
    assert performance.main(["--predictions", "scored.csv", "--labels", "labels.csv"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"performance: labels.csv: no column `{schema.target}` (the labels)"
    assert not (root / "performance").exists()
