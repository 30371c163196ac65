"""The base revision's model.onnx, so the report can score it on this change's rows.

Found, in this order: in the local DVC cache (a run of the base, or CI's restored cache), in the
DVC remote (`Repo.fetch` of that one output at that revision), or rebuilt by `dvc repro export`
in a throwaway git worktree of the base that shares this project's cache. The report says which.
When none works, the reason comes back as one line and the report falls back to the base's
committed metrics, labelled as such.

DVC is driven through its Python API here (`dvc.repo.Repo`): its CLI cannot fetch an output of
another revision (`dvc fetch` has no --rev; dvc.org/doc/command-reference/fetch), while
`Repo.fetch(revs=[...])` walks that revision as `--all-commits` would.
"""

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import PipelineError
from ..remote import PLACEHOLDER

MODEL = "models/model.onnx"
MODES = ("auto", "fetch", "off")  # auto: cache, remote, else rebuild; fetch: never rebuild


@dataclass
class BaseModel:
    model: bytes
    source: str  # where it came from, as the report says it


def model_hash(lock_text: str | None) -> tuple[str, bool]:
    """The md5 of models/model.onnx in a dvc.lock, and whether it is DVC 3's hash (`hash: md5`,
    files/md5/ in the cache) or DVC 2's (the cache's top level)."""
    try:
        lock = yaml.safe_load(lock_text or "") or {}
    except yaml.YAMLError:
        lock = {}
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            if isinstance(out, dict) and out.get("path") == MODEL and out.get("md5"):
                return str(out["md5"]), out.get("hash") == "md5"
    raise PipelineError(f"the base's dvc.lock names no {MODEL}")


def _from_cache(root: Path, md5: str, dvc3: bool) -> bytes | None:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        cache = repo.cache.local if dvc3 else repo.cache.legacy
        path = Path(cache.oid_to_path(md5))
    return path.read_bytes() if path.is_file() else None


def _remote_problem(root: Path) -> str | None:
    """Why the default remote cannot be asked, if it cannot."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        name = repo.config["core"].get("remote")
        if not name:
            return "no DVC remote is configured"
        url = str(repo.config["remote"].get(name, {}).get("url", ""))
    if PLACEHOLDER.search(url):
        return f"the DVC remote `{name}` is still the placeholder {url}"
    return None


def _from_remote(root: Path, sha: str) -> None:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        repo.fetch(targets=[MODEL], revs=[sha], workspace=False)


def _rebuild(root: Path, sha: str) -> bytes:
    """`dvc repro export` of the base in a git worktree that shares this project's DVC cache
    and config; the base's own code is imported first (PYTHONPATH), not this change's."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        cache_dir = str(repo.cache.legacy.path)  # the cache's root (DVC 3 keeps files/md5/ in it)
    work = Path(tempfile.mkdtemp(prefix="base-model-"))
    tree = work / "tree"
    try:
        _run(["git", "worktree", "add", "--detach", str(tree), sha], root)
        local = root / ".dvc" / "config.local"
        if local.is_file():
            shutil.copy(local, tree / ".dvc" / "config.local")
        _run(["dvc", "cache", "dir", "--local", cache_dir], tree)
        path = [str(tree / "src"), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}
        # The base's inputs (its data, a tracked CSV) from the shared cache; what is missing
        # there, repro rebuilds or names.
        subprocess.run(["dvc", "checkout", "--quiet"], cwd=tree, capture_output=True)
        _run(["dvc", "repro", "--quiet", "export"], tree, env)
        return (tree / MODEL).read_bytes()
    finally:
        remove = ["git", "worktree", "remove", "--force", str(tree)]
        subprocess.run(remove, cwd=root, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        last = lines[-1] if lines else f"exit {done.returncode}"
        raise PipelineError(f"`{' '.join(command[:3])}` failed: {last}")


def find(sha: str, lock_text: str | None, root: Path, mode: str = "auto") -> BaseModel:
    """The base's model.onnx; a PipelineError whose one line says why none could be had."""
    if mode == "off":
        raise PipelineError("not asked for (BASE_MODEL=off)")
    md5, dvc3 = model_hash(lock_text)
    from dvc.exceptions import DvcException

    try:
        model = _from_cache(root, md5, dvc3)
        if model is not None:
            return BaseModel(model, "the local DVC cache")
        problem = _remote_problem(root)
        if problem is None:
            try:
                _from_remote(root, sha)
            except DvcException as err:
                problem = f"the DVC remote failed: {str(err).splitlines()[0]}"
            model = _from_cache(root, md5, dvc3)
            if model is not None:
                return BaseModel(model, "the DVC remote")
            problem = problem or "the DVC remote does not have it"
    except DvcException as err:
        raise PipelineError(f"DVC failed: {str(err).splitlines()[0]}") from None
    if mode == "fetch":
        raise PipelineError(f"not in the DVC cache; {problem} (BASE_MODEL=fetch: no rebuild)")
    try:
        return BaseModel(_rebuild(root, sha), f"`dvc repro` of the base ({problem})")
    except (PipelineError, OSError) as err:
        raise PipelineError(
            f"not in the DVC cache; {problem}; rebuilding it failed: {err}"
        ) from None
