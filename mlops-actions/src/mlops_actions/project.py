"""What the package's commands say about the project they run in, read from its pyproject.toml.

`[project]` gives the name (the repository's, which the server and the manifests use as the
model's name) and the description; `[tool.mlops-actions]` the title shown in model cards and the
serving image's name. Standard library only: `make smoke` and `make deliver` run on a bare runner.
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import PipelineError

PYPROJECT = Path("pyproject.toml")


@dataclass(frozen=True)
class Project:
    name: str  # the repository's name, and the served model's
    title: str
    description: str
    image: str  # where releases push the serving image, without a tag


def load_project(path: Path = PYPROJECT) -> Project:
    """The project of `path`; one line naming the file and the key when one is missing."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise PipelineError(f"{path}: cannot read the project's settings: {err}") from None
    project, tool = data.get("project", {}), data.get("tool", {}).get("mlops-actions", {})
    try:
        return Project(
            name=project["name"],
            title=tool.get("title", project["name"]),
            description=project.get("description", ""),
            image=tool["image"],
        )
    except KeyError as err:
        section = "[project]" if err.args[0] == "name" else "[tool.mlops-actions]"
        raise PipelineError(f"{path}: {section} has no {err.args[0]!r}") from None
