"""Reject bad answers before anything is written.

Cookiecutter deletes the half-made project when this hook exits non-zero, so a bad answer leaves
nothing behind. One line per problem names the field, so `--no-input` runs in CI read clearly.
Choice options need no check here: cookiecutter itself refuses a value outside their list.
Standard library only: the hook runs in whatever Python cookiecutter runs in.
"""

import json
import keyword
import re
import sys

ANSWERS = json.loads(r"""{{ cookiecutter | jsonify }}""")
DATASET_TASKS = {
    "breast_cancer": {"binary_classification"},
    "wine": {"multiclass_classification"},
    "iris": {"multiclass_classification"},
    "diabetes": {"regression"},
    "synthetic": {"binary_classification", "multiclass_classification", "regression"},
}
# Free text lands in shell lines, TOML strings and Python docstrings.
UNSAFE_TEXT = re.compile(r'["\\`$]')
# Keeps `from <module>.<submodule> import <name>` lines within the generated line length.
MAX_MODULE_NAME = 40
# Names that would shadow the packages the generated project imports.
TAKEN_MODULE_NAMES = {
    *("dvc", "joblib", "numpy", "onnx", "onnxruntime", "pandas", "skl2onnx", "sklearn", "yaml"),
    *("hypothesis", "prometheus_client", "tritonclient", "uvicorn", "uvloop", "httptools"),
    "tests",
}


def problems(a: dict) -> list[str]:
    found = []
    for field in ("project_name", "description", "author_name"):
        if UNSAFE_TEXT.search(a[field]):
            found.append(
                f'{field} {a[field]!r}: leave out \\ " ` and $ (they break quoted strings)'
            )
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", a["project_slug"]):
        found.append(
            f"project_slug {a['project_slug']!r}: use lowercase letters, digits and single dashes"
        )
    module = a["module_name"]
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", module) or keyword.iskeyword(module):
        found.append(f"module_name {module!r}: must be a lowercase identifier, not a keyword")
    elif len(module) > MAX_MODULE_NAME:
        found.append(f"module_name {module!r}: longer than {MAX_MODULE_NAME} characters")
    elif module in TAKEN_MODULE_NAMES or module in sys.stdlib_module_names:
        found.append(f"module_name {module!r}: shadows an existing module; pick another name")
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", a["author_email"]):
        found.append(f"author_email {a['author_email']!r}: not an email address")
    if not re.fullmatch(r"[A-Za-z0-9](-?[A-Za-z0-9])*", a["github_owner"]):
        found.append(f"github_owner {a['github_owner']!r}: not a GitHub user or organisation")
    dataset = a["__dataset"]
    if a["task"] not in DATASET_TASKS[dataset]:
        fitting = " or ".join(sorted(d for d, t in DATASET_TASKS.items() if a["task"] in t))
        found.append(f"dataset {dataset!r} does not fit task {a['task']!r}: choose {fitting}")
    return found


if __name__ == "__main__":
    errors = problems(ANSWERS)
    for line in errors:
        print(f"ERROR: {line}", file=sys.stderr)
    sys.exit(1 if errors else 0)
