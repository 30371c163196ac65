"""The bake matrix, read from cookiecutter.json so a new option value is tested automatically.

task x model is a full product (they interact: every family must work for every task); every other
option is cycled through the rows so each of its values is baked at least once. A retired value
(cookiecutter.json's `__retired`) is not baked: tests/test_hooks.py checks that it is refused.
"""

import itertools
import json
from pathlib import Path

CONTEXT = json.loads((Path(__file__).resolve().parents[1] / "cookiecutter.json").read_text())
INTERACTING = ("task", "model")
DATASET_TASKS = {
    "breast_cancer": "binary_classification",
    "wine": "multiclass_classification",
    "iris": "multiclass_classification",
    "diabetes": "regression",
}


def choices(option: str) -> list[str]:
    """The values a bake accepts: a retired value is refused by the pre-gen hook."""
    retired = CONTEXT["__retired"].get(option, {})
    return [value for value in CONTEXT[option] if value not in retired]


def fitting(option: str, task: str) -> list[str]:
    """The values of an option that a task accepts (only dataset depends on the task)."""
    if option != "dataset":
        return choices(option)
    return [value for value in choices(option) if DATASET_TASKS.get(value, task) == task]


def matrix() -> list[dict[str, str]]:
    """Every task x model pair; then more rows until each cycled value has been baked (each
    dataset with every task it fits: the synthetic schema differs by task)."""
    cycled = [
        key for key, value in CONTEXT.items() if isinstance(value, list) and key not in INTERACTING
    ]
    product = [
        dict(zip(INTERACTING, combo, strict=True))
        for combo in itertools.product(*map(choices, INTERACTING))
    ]
    unseen = {
        (key, task if key == "dataset" else "", value)
        for key in cycled
        for task in choices("task")
        for value in fitting(key, task)
    }
    turns: dict[tuple[str, str], int] = {}
    combos: list[dict[str, str]] = []
    while len(combos) < len(product) or unseen:
        answers = dict(product[len(combos) % len(product)])
        for key in cycled:
            scope = answers["task"] if key == "dataset" else ""
            values = fitting(key, answers["task"])
            turn = turns.get((key, scope), 0)
            turns[(key, scope)] = turn + 1
            answers[key] = values[turn % len(values)]
            unseen.discard((key, scope, answers[key]))
        combos.append(answers)
    return combos


def combo_id(answers: dict[str, str]) -> str:
    return "-".join(answers[key] for key in sorted(answers))
