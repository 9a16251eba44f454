"""Thin python-gitlab adapter: find the merge request, read its diff, post the summary."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import gitlab
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from reviewer import gitlab_diffs
from reviewer.config import Settings
from reviewer.diff import Change
from reviewer.errors import ConfigError, GitLabError, PositionRejected, UsageError

MR_URL = re.compile(r"^https?://[^/]+/.+?/-/merge_requests/(\d+)/?(?:[?#].*)?$")


@dataclass(frozen=True)
class Target:
    """Which merge request to review, before anything is asked of GitLab."""

    url: str
    project: str
    iid: int | None
    branch: str | None = None  # find the MR by its source branch (a pipeline run by hand)


@dataclass(frozen=True)
class Note:
    """The first note of a discussion."""

    discussion_id: str
    note_id: int
    body: str
    resolved: bool


@dataclass(frozen=True)
class MergeRequest:
    project_id: int
    project_path: str
    iid: int
    title: str
    description: str
    web_url: str
    source_branch: str
    target_branch: str
    base_sha: str
    start_sha: str
    head_sha: str
    changes: tuple[Change, ...]


def resolve_target(settings: Settings) -> Target:
    """The merge request named by --mr-url, --project/--mr, or the CI variables."""
    if settings.mr_url:
        return _parse_mr_url(settings.mr_url, settings.gitlab_url)
    if not settings.gitlab_url:
        raise ConfigError("no GitLab URL: pass --gitlab-url or --mr-url (in CI, CI_SERVER_URL "
                          "is set), or use --local to review a local git range")
    if not settings.project:
        raise ConfigError("no project: pass --project group/name or --mr-url")
    if settings.mr is not None:
        return Target(settings.gitlab_url.rstrip("/"), settings.project, settings.mr)
    if settings.ci_commit_ref_name:
        return Target(settings.gitlab_url.rstrip("/"), settings.project, None,
                      settings.ci_commit_ref_name)
    raise ConfigError("no merge request: pass --mr IID or --mr-url (in CI, set REVIEWER_MR_IID "
                      "or run in a merge request pipeline)")


def _parse_mr_url(mr_url: str, gitlab_url: str | None) -> Target:
    match = MR_URL.match(mr_url)
    if not match:
        raise UsageError(f"--mr-url {mr_url!r} is not a merge request URL "
                         "(https://host/group/project/-/merge_requests/42)")
    # A GitLab under a relative root (https://host/gitlab) is only known from --gitlab-url.
    root = _origin(mr_url)
    if gitlab_url and mr_url.startswith(gitlab_url.rstrip("/") + "/"):
        root = gitlab_url.rstrip("/")
    project = mr_url[len(root) + 1:].split("/-/merge_requests/")[0]
    return Target(root, project, int(match.group(1)))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@contextmanager
def _errors(what: str, url: str) -> Iterator[None]:
    """GitLab's failures as one actionable line each."""
    try:
        yield
    except gitlab.GitlabAuthenticationError:
        raise GitLabError(f"GitLab rejected the token while trying to {what} (401): check "
                          "REVIEWER_GITLAB_TOKEN is set, unexpired and for this GitLab") from None
    except gitlab.GitlabError as exc:
        code = exc.response_code
        if code == 403:
            raise GitLabError(f"the token may not {what} (403): it needs the api scope and at "
                              "least the Developer role on the project; CI_JOB_TOKEN cannot do "
                              "this") from None
        if code == 404:
            raise GitLabError(f"cannot {what}: not found (404), or the token cannot see it") \
                from None
        raise GitLabError(f"cannot {what}: GitLab answered {code}: {exc.error_message}") from None
    except requests.RequestException as exc:
        raise GitLabError(f"cannot reach GitLab at {url} to {what}: "
                          f"{type(exc).__name__}") from None


class GitLab:
    """The few GitLab calls a review needs, returning our own types.

    max_file_bytes: the largest diff of one file read in full when GitLab cut it (0: none).
    """

    def __init__(self, url: str, token: str | None, timeout: float = 60.0,
                 max_file_bytes: int = 1_000_000) -> None:
        self.url = url
        self.max_file_bytes = max_file_bytes
        self.gl = gitlab.Gitlab(url, private_token=token, timeout=timeout,
                                session=_session(), per_page=100)

    def find_iid(self, target: Target) -> int:
        """The merge request's iid; by its source branch for a pipeline run by hand."""
        if target.iid is not None:
            return target.iid
        with _errors(f"list merge requests of {target.project}", self.url):
            project = self.gl.projects.get(target.project, lazy=True)
            found = project.mergerequests.list(state="opened", source_branch=target.branch,
                                               get_all=True)
        iids = sorted(int(mr.iid) for mr in found)
        if len(iids) == 1:
            return iids[0]
        if not iids:
            raise ConfigError(f"no open merge request has source branch {target.branch!r}: "
                              "open one, or set REVIEWER_MR_IID")
        listed = ", ".join(f"!{i}" for i in iids)
        raise ConfigError(f"{len(iids)} open merge requests ({listed}) have source branch "
                          f"{target.branch!r}: set REVIEWER_MR_IID to the one to review")

    def fetch(self, project_ref: str, iid: int) -> MergeRequest:
        """The merge request, its newest diff version's SHAs and its file diffs.

        Files GitLab cut for its diff limits (``collapsed``/``too_large`` with an empty diff,
        GET .../diffs since 15.7, .../changes before) are read in full with one more request
        when some file needs it, if their diff is at most max_file_bytes (gitlab_diffs.fill);
        the rest stay cut, and diff.select lists them as not reviewed. Raises GitLabError
        (one actionable line) when GitLab refuses or cannot be reached.
        """
        with _errors(f"read merge request !{iid} of {project_ref}", self.url):
            project = self.gl.projects.get(project_ref)
            mr = project.mergerequests.get(iid)
            versions = mr.diffs.list(get_all=True)
        refs = mr.diff_refs or {}
        if versions:
            newest = max(versions, key=lambda v: int(v.id))
            refs = {"base_sha": newest.base_commit_sha, "start_sha": newest.start_commit_sha,
                    "head_sha": newest.head_commit_sha}
        with _errors(f"read the diff of merge request !{iid}", self.url):
            changes = [_change(f) for f in self._file_diffs(int(project.id), iid, mr)]
        if self.max_file_bytes and any(gitlab_diffs.needs_full_text(c) for c in changes):
            with _errors(f"read the full diff of merge request !{iid}", self.url):
                path = f"/projects/{project.id}/merge_requests/{iid}"
                changes = gitlab_diffs.fill(self.gl, path, changes, self.max_file_bytes)
        return MergeRequest(
            project_id=int(project.id), project_path=str(project.path_with_namespace), iid=iid,
            title=str(mr.title), description=str(mr.description or ""), web_url=str(mr.web_url),
            source_branch=str(mr.source_branch), target_branch=str(mr.target_branch),
            base_sha=str(refs.get("base_sha") or ""), start_sha=str(refs.get("start_sha") or ""),
            head_sha=str(refs.get("head_sha") or mr.sha or ""),
            changes=tuple(changes),
        )

    def _file_diffs(self, project_id: int, iid: int, mr: Any) -> list[dict[str, Any]]:
        path = f"/projects/{project_id}/merge_requests/{iid}/diffs"
        try:
            return list(self.gl.http_list(path, iterator=True, per_page=100))
        except gitlab.GitlabHttpError as exc:
            if exc.response_code != 404:
                raise
        # GitLab before 15.7 has no /diffs; /changes is its (deprecated) predecessor.
        return list(mr.changes()["changes"])

    def _mr(self, project_id: int, iid: int) -> Any:
        return self.gl.projects.get(project_id, lazy=True).mergerequests.get(iid, lazy=True)

    def our_notes(self, project_id: int, iid: int) -> list[Note]:
        """The first note of every discussion written by the token's own user (GET /user)."""
        with _errors(f"read the discussions of merge request !{iid}", self.url):
            self.gl.auth()
            me = self.gl.user.id if self.gl.user else None
            found = []
            for discussion in self._mr(project_id, iid).discussions.list(iterator=True):
                notes = discussion.attributes.get("notes") or []
                if notes and notes[0].get("author", {}).get("id") == me:
                    first = notes[0]
                    found.append(Note(str(discussion.id), int(first["id"]),
                                      str(first.get("body", "")), bool(first.get("resolved"))))
            return found

    def create_discussion(self, project_id: int, iid: int, body: str,
                          position: dict[str, Any] | None = None) -> Note:
        """Start a discussion, on a diff line when position is given."""
        data: dict[str, Any] = {"body": body} | ({"position": position} if position else {})
        with _errors(f"post on merge request !{iid}", self.url):
            try:
                created = self._mr(project_id, iid).discussions.create(data)
            except gitlab.GitlabCreateError as exc:
                if position and exc.response_code == 400:
                    raise PositionRejected(str(exc.error_message)) from None
                raise
        first = created.attributes["notes"][0]
        if position and first.get("type") != "DiffNote":
            raise PositionRejected(f"GitLab made a {first.get('type')} of it, not a DiffNote")
        return Note(str(created.id), int(first["id"]), body, False)

    def update_note(self, project_id: int, iid: int, note_id: int, body: str) -> None:
        """Edit a note in place."""
        with _errors(f"edit the review on merge request !{iid}", self.url):
            self._mr(project_id, iid).notes.update(note_id, {"body": body})

    def reply_and_resolve(self, project_id: int, iid: int, discussion_id: str, body: str) -> None:
        """Answer in a thread and mark it resolved (never delete anything)."""
        with _errors(f"resolve a thread on merge request !{iid}", self.url):
            mr = self._mr(project_id, iid)
            mr.discussions.get(discussion_id, lazy=True).notes.create({"body": body})
            mr.discussions.update(discussion_id, {"resolved": True})


def _session() -> requests.Session:
    # Reads are retried on a GitLab hiccup; writes are not, so a retry never posts twice.
    retry = Retry(total=3, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504),
                  allowed_methods=frozenset({"GET"}), raise_on_status=False)
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def _change(item: dict[str, Any]) -> Change:
    # GitLab's JSON names files exactly (no quoting) and gives git's modes as octal strings,
    # "0" for the side a new or deleted file does not have.
    return Change(
        old_path=str(item.get("old_path") or item.get("new_path")),
        new_path=str(item.get("new_path") or item.get("old_path")),
        diff=str(item.get("diff") or ""),
        new_file=bool(item.get("new_file")), deleted_file=bool(item.get("deleted_file")),
        renamed_file=bool(item.get("renamed_file")), too_large=bool(item.get("too_large")),
        collapsed=bool(item.get("collapsed")), generated=bool(item.get("generated_file")),
        old_mode=_mode(item.get("a_mode")), new_mode=_mode(item.get("b_mode")),
    )


def _mode(value: Any) -> str | None:
    mode = str(value or "").strip()
    return None if mode in ("", "0") else mode
