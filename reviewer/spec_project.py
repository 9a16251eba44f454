"""A spec kept in the reviewed project itself, read from the target branch, never the MR's head.

A merge request must not rewrite the rules that judge it: with `--spec .review/rules` in a
merge request pipeline, the checkout is the MR's own head, so an author could weaken a rule in
the same MR it would catch. Such a folder is read through GitLab's repository API at the merge
request's base commit instead (GET /projects/:id/repository/tree and
/repository/files/:path/raw, docs.gitlab.com/api/repositories and /api/repository_files), and
a change to it in the MR is reviewed like any other file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from reviewer import spec
from reviewer.errors import SpecError

if TYPE_CHECKING:  # python-gitlab only where GitLab is read: a local review never imports it
    import gitlab


def project_folder(source: str | None, subdir: str | None, project_dir: Path | None
                   ) -> str | None:
    """The spec's folder relative to the reviewed project's checkout, or None.

    source: --spec; subdir: --spec-dir; project_dir: CI_PROJECT_DIR, the checkout of the
    project the pipeline runs for (None outside CI: a local run trusts its own folders).
    """
    if source is None or project_dir is None or spec.is_url(source):
        return None
    folder = (project_dir / source / (subdir or "")).resolve()
    root = project_dir.resolve()
    if folder != root and root not in folder.parents:
        return None
    return folder.relative_to(root).as_posix() if folder != root else ""


def read(gl: gitlab.Gitlab, project_id: int, folder: str, ref: str) -> dict[str, bytes]:
    """The rule files under folder at ref, as {path relative to folder: bytes}.

    Raises SpecError when the folder is not on that ref (an MR cannot bring its own rules)
    or the spec is over spec.MAX_RULE_FILES / MAX_RULE_FILE_BYTES.
    """
    import gitlab

    project = gl.projects.get(project_id, lazy=True)
    try:
        tree = project.repository_tree(path=folder, ref=ref, recursive=True, get_all=True)
        names = _rule_files(tree, folder)
        files: dict[str, bytes] = {}
        for path in names:
            data = project.files.raw(file_path=path, ref=ref)
            rel = PurePosixPath(path).relative_to(folder).as_posix() if folder else path
            spec.check_size(rel, len(data))
            files[rel] = bytes(data)
    except gitlab.GitlabGetError as exc:
        if exc.response_code == 404:
            raise SpecError(f"the spec folder {folder or '.'} is not on the target branch: a "
                            "merge request cannot bring the rules that judge it; merge the "
                            "rules first, or keep them in a spec repository") from None
        raise SpecError(f"cannot read the spec folder {folder} at {ref[:12]} from GitLab: "
                        f"{exc.response_code} {exc.error_message}") from None
    return files


def _rule_files(tree: Sequence[dict[str, object]] | object, folder: str) -> list[str]:
    items = tree if isinstance(tree, list) else []
    names = [str(item["path"]) for item in items
             if item.get("type") == "blob" and str(item.get("path", "")).endswith(".md")
             and "/.git/" not in f"/{item['path']}"]
    spec.check_count(folder or ".", len(names))
    return sorted(names)


def changes_rules(paths: Sequence[str], folder: str) -> bool:
    """True when the merge request changes a file under the spec folder."""
    prefix = f"{folder}/" if folder else ""
    return any(p.startswith(prefix) and p.endswith(".md") for p in paths)
