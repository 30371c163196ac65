"""Refuse bad answers before anything is written: one line per answer to fix, naming it and the
rule it broke. Cookiecutter deletes the half-made project when this hook exits non-zero.

Why here and nothing earlier: cookiecutter creates the project directory, named by project_slug,
before this hook runs, so an empty project_name used to stop it first ('"." directory already
exists'); cookiecutter.json's slug now falls back to a placeholder name, for this hook to refuse.
A pre_prompt hook runs before there are answers; a Jinja extension in `_extensions` would run our
code inside every cookiecutter and cruft render, and reach the user only through cookiecutter's
traceback or context dump. After a failed hook cookiecutter 2.7.1 prints 12 lines of its own on
stdout (hooks.py logs the traceback, cli.py echoes the exception; no option turns them off), so
these lines go to stderr, alone there. Choice options are refused by cookiecutter itself, before
any hook (a ValueError traceback ending in the allowed choices); so a value the template no longer
supports stays a choice, marked in cookiecutter.json's `__retired` with what to do instead, and is
refused here: `cookiecutter` then shows that one line alone on stderr, `cruft update` of a project
baked with it shows it first (then cruft's traceback). Standard library only.
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
UNSAFE_TEXT = re.compile(r'["\\`$]')  # free text lands in shell lines, TOML and docstrings
MAX_MODULE_NAME = 40  # keeps `from <module>.<submodule> import <name>` within the line length
TAKEN_MODULE_NAMES = {  # what the generated project imports
    *("dvc", "joblib", "numpy", "onnx", "onnxruntime", "pandas", "skl2onnx", "sklearn", "yaml"),
    *("hypothesis", "prometheus_client", "tritonclient", "uvicorn", "uvloop", "httptools"),
    "tests",
}
GITHUB_NAME_RULE = "it must be letters, digits and single dashes, not starting or ending in one"


def slug_rule(slug: str) -> str | None:
    if not slug[:1].isalpha():
        return "it must start with a letter"
    if re.search(r"[^a-z0-9-]", slug):
        return "it may hold only a-z, 0-9 and dashes"
    if re.search("--|-$", slug):
        return "it must not end in a dash or hold two in a row"
    # GitHub's limit for a repository's name; the server's model name (a path segment) is the slug.
    return "it must be at most 100 characters long" if len(slug) > 100 else None


def module_rule(module: str) -> str | None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", module):
        return "it must be a lowercase Python identifier (letters, digits, underscores)"
    if keyword.iskeyword(module):
        return "it must not be a Python keyword"
    if len(module) > MAX_MODULE_NAME:
        return f"it must be at most {MAX_MODULE_NAME} characters long"
    if module in TAKEN_MODULE_NAMES or module in sys.stdlib_module_names:
        return "it must not shadow a module the project imports (standard library included)"
    return None


def problems(a: dict) -> list[str]:
    """The first problem of each answer to fix. The slug cookiecutter.json makes from project_name,
    and the module name it makes from the slug, are blamed on the answer they came from."""
    found: dict[str, str] = {}

    def refuse(answer: str, field: str, rule: str | None) -> None:
        if rule and answer not in found:
            source = "" if answer == field else f"{answer} {a[answer]!r} gives the "
            found[answer] = f"{source}{field} {a[field]!r}: {rule}"

    name, slug, module = a["project_name"], a["project_slug"], a["module_name"]
    derived = name.lower().replace(" ", "-").replace("_", "-") or "empty-project-name"
    why = " (the directory name comes from it)" if slug == derived else ""
    empty = None if name.strip() else f"it must not be empty{why}"
    refuse("project_name", "project_name", empty)  # cookiecutter.json's slug fallback got here
    for field in ("project_name", "description", "author_name"):
        unsafe = UNSAFE_TEXT.search(a[field])
        refuse(field, field, unsafe and 'it must not hold \\ " ` or $ (they break quoted strings)')
    made = slug == name.lower().replace(" ", "-").replace("_", "-")
    slug_from = "project_name" if made else "project_slug"
    refuse(slug_from, "project_slug", slug_rule(slug))
    module_from = slug_from if module == slug.replace("-", "_") else "module_name"
    refuse(module_from, "module_name", module_rule(module))
    email = re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", a["author_email"])
    refuse("author_email", "author_email", None if email else "it must look like name@example.com")
    owner = re.fullmatch(r"[A-Za-z0-9](-?[A-Za-z0-9])*", a["github_owner"])
    refuse("github_owner", "github_owner", None if owner else GITHUB_NAME_RULE)
    for option, retired in a["__retired"].items():
        refuse(option, option, retired.get(a[option]))
    dataset = a["__dataset"]
    if a["task"] not in DATASET_TASKS[dataset]:
        fitting = " or ".join(sorted(d for d, t in DATASET_TASKS.items() if a["task"] in t))
        found["dataset"] = f"dataset {dataset!r} does not fit task {a['task']!r}: choose {fitting}"
    return list(found.values())


if __name__ == "__main__":
    errors = problems(ANSWERS)
    for line in errors:
        print(f"ERROR: {line}", file=sys.stderr)
    sys.exit(1 if errors else 0)
