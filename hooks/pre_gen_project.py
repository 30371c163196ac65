"""Reject bad answers before anything is written.

Cookiecutter deletes the half-made project when this hook exits non-zero, so a bad answer leaves
nothing behind. One line per problem names the field, so `--no-input` runs in CI read clearly.
Choice options need no check here: cookiecutter itself refuses a value outside their list.
Standard library only: the hook runs in whatever Python cookiecutter runs in.
"""

import keyword
import re
import sys

ANSWERS = {
    "project_slug": {{ cookiecutter.project_slug | tojson }},
    "module_name": {{ cookiecutter.module_name | tojson }},
    "author_email": {{ cookiecutter.author_email | tojson }},
    "github_owner": {{ cookiecutter.github_owner | tojson }},
    "task": {{ cookiecutter.task | tojson }},
    "dataset": {{ cookiecutter.__dataset | tojson }},
}
DATASET_TASKS = {
    "breast_cancer": {"binary_classification"},
    "wine": {"multiclass_classification"},
    "iris": {"multiclass_classification"},
    "diabetes": {"regression"},
    "synthetic": {"binary_classification", "multiclass_classification", "regression"},
}
# Names that would shadow the packages the generated project imports.
TAKEN_MODULE_NAMES = {"dvc", "onnx", "onnxruntime", "pandas", "numpy", "sklearn", "skl2onnx", "yaml", "tests"}


def problems(a: dict) -> list[str]:
    found = []
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", a["project_slug"]):
        found.append(f"project_slug {a['project_slug']!r}: use lowercase letters, digits and single dashes")
    module = a["module_name"]
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", module) or keyword.iskeyword(module):
        found.append(f"module_name {module!r}: must be a lowercase Python identifier and not a keyword")
    elif module in TAKEN_MODULE_NAMES or module in sys.stdlib_module_names:
        found.append(f"module_name {module!r}: shadows an existing Python module; pick another name")
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", a["author_email"]):
        found.append(f"author_email {a['author_email']!r}: not an email address")
    if not re.fullmatch(r"[A-Za-z0-9](-?[A-Za-z0-9])*", a["github_owner"]):
        found.append(f"github_owner {a['github_owner']!r}: not a GitHub user or organisation name")
    if a["task"] not in DATASET_TASKS[a["dataset"]]:
        fitting = sorted(d for d, t in DATASET_TASKS.items() if a["task"] in t)
        found.append(f"dataset {a['dataset']!r} does not fit task {a['task']!r}: choose {' or '.join(fitting)}")
    return found


if __name__ == "__main__":
    errors = problems(ANSWERS)
    for line in errors:
        print(f"ERROR: {line}", file=sys.stderr)
    sys.exit(1 if errors else 0)
