"""Thin python-gitlab adapter: find the merge request, read its diff, post the summary."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gitlab

from reviewer import gitlab_diffs
from reviewer.clock import Clock
from reviewer.diff import Change
from reviewer.errors import ConfigError, GitLabError, PositionRejected
from reviewer.gitlab_http import Client, Origins, errors, no_mr, no_project, transient
from reviewer.gitlab_target import Target, origins, resolve_target
from reviewer.retry import BASE, Policy

__all__ = ["GitLab", "MergeRequest", "Note", "Origins", "Target", "origins", "resolve_target"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Note:
    """The first note of a discussion."""

    discussion_id: str
    note_id: int
    body: str
    resolved: bool
    path: str | None = None  # the file a diff note is on (its position's new, else old path)


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


class GitLab:
    """The few GitLab calls a review needs, returning our own types.

    timeout: seconds for one request. max_file_bytes: the largest diff of one file read in
    full when GitLab cut it (0: none). retries and clock bound every request (reviewer.retry:
    a 429/5xx/lost connection is retried, a POST only when what it would create is not found).
    origins: where the token, project and iid came from, for the messages of a 401 or 404.
    backoff: the first retry's wait in seconds (about; see reviewer.retry).
    """

    def __init__(self, url: str, token: str | None, timeout: float = 60.0,
                 max_file_bytes: int = 1_000_000, retries: int = 3, clock: Clock | None = None,
                 origins: Origins | None = None, backoff: float = BASE) -> None:
        self.url = url
        self.max_file_bytes = max_file_bytes
        self.origins = origins or Origins()
        self.policy = Policy(retries, clock or Clock(), base=backoff)
        self.gl = Client(url, token, timeout, self.policy)
        self._me: int | None = None

    def _errors(self, what: str, not_found: str | None = None) -> Any:
        return errors(what, self.url, self.origins, not_found)

    def _full_text(self, project_id: int, iid: int, changes: list[Change]) -> list[Change]:
        """Files GitLab cut, read in full where it can be; a failed read leaves them cut (not
        reviewed, exit 4) instead of failing the whole review."""
        if not self.max_file_bytes:
            return gitlab_diffs.unread(changes, "not read in full (--max-file-bytes 0)")
        try:
            with self._errors(f"read the full diff of merge request !{iid}"):
                path = f"/projects/{project_id}/merge_requests/{iid}"
                return gitlab_diffs.fill(self.gl, path, changes, self.max_file_bytes)
        except GitLabError as exc:
            log.warning("%s; the files GitLab cut are listed as not reviewed", exc)
            return gitlab_diffs.unread(changes, "its full text could not be read from GitLab")

    def find(self, target: Target) -> tuple[str, int]:
        """The merge request's project and iid; by its source branch for a pipeline run by hand.

        A fork's pipeline runs in the fork (CI_PROJECT_ID), but its merge request lives in the
        project it targets: the fork's upstream (GET /projects/:id "forked_from_project") is
        searched too, for an MR whose source_project_id is the fork.
        """
        if target.iid is not None:
            return target.project, target.iid
        with self._errors(f"list merge requests of {target.project}",
                          no_project(target.project, self.origins)):
            project = self.gl.projects.get(target.project)
            found = [(target.project, int(mr.iid)) for mr in project.mergerequests.list(
                state="opened", source_branch=target.branch, get_all=True)]
            upstream = (project.attributes.get("forked_from_project") or {}).get("id")
            if upstream is not None:
                found += [(str(upstream), int(mr.iid)) for mr in self.gl.projects.get(
                    upstream, lazy=True).mergerequests.list(
                    state="opened", source_branch=target.branch, get_all=True)
                    if mr.source_project_id == project.id]
        return _one(found, target.branch)

    def fetch(self, project_ref: str, iid: int) -> MergeRequest:
        """The merge request, its newest diff version's SHAs and its file diffs.

        Files GitLab cut for its diff limits (``collapsed``/``too_large`` with an empty diff,
        GET .../diffs since 15.7, .../changes before) are read in full with one more request
        when some file needs it, if their diff is at most max_file_bytes (gitlab_diffs.fill);
        the rest stay cut, and diff.select lists them as not reviewed. Raises GitLabError
        (one actionable line) when GitLab refuses or cannot be reached, DeadlineExceeded when
        the deadline stops it.
        """
        with self._errors(f"read project {project_ref}", no_project(project_ref, self.origins)):
            project = self.gl.projects.get(project_ref)
        with self._errors(f"read merge request !{iid} of {project_ref}",
                          no_mr(str(project.path_with_namespace), iid, self.origins)):
            mr = project.mergerequests.get(iid)
            versions = mr.diffs.list(get_all=True)
        refs = mr.diff_refs or {}
        if versions:
            newest = max(versions, key=lambda v: int(v.id))
            refs = {"base_sha": newest.base_commit_sha, "start_sha": newest.start_commit_sha,
                    "head_sha": newest.head_commit_sha}
        with self._errors(f"read the diff of merge request !{iid}"):
            changes = [_change(f) for f in self._file_diffs(int(project.id), iid, mr)]
        if any(gitlab_diffs.needs_full_text(c) for c in changes):
            changes = self._full_text(int(project.id), iid, changes)
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

    def since(self, project_id: int, old: str, new: str) -> list[Change] | None:
        """The files changed from commit old to commit new, or None when old is no ancestor of
        new (a force-push or a rebase; GitLab no longer knows old, or the two share no
        history): GET .../repository/merge_base?refs[]=old&refs[]=new, then
        GET .../repository/compare?from=old&to=new&straight=true. A compare that timed out is
        None too: a full review is always safe."""
        with self._errors("compare the commits since the last review"):
            project = self.gl.projects.get(project_id, lazy=True)
            try:
                base = project.repository_merge_base([old, new])
            except gitlab.GitlabGetError as exc:
                if exc.response_code in (400, 404):  # an unknown ref; no common history
                    return None
                raise
            if not isinstance(base, dict) or base.get("id") != old:
                return None
            found = project.repository_compare(old, new, straight=True)
        if not isinstance(found, dict) or found.get("compare_timeout"):
            return None
        return [_change(d) for d in found.get("diffs") or []]

    def _mr(self, project_id: int, iid: int) -> Any:
        return self.gl.projects.get(project_id, lazy=True).mergerequests.get(iid, lazy=True)

    def _user_id(self) -> int | None:
        """The token's own user (GET /user), asked once."""
        if self._me is None:
            self.gl.auth()
            self._me = self.gl.user.id if self.gl.user else None
        return self._me

    def _our_firsts(self, project_id: int, iid: int) -> list[tuple[str, dict[str, Any]]]:
        """(discussion id, first note) of every discussion the token's own user started."""
        me = self._user_id()
        found = []
        for discussion in self._mr(project_id, iid).discussions.list(iterator=True):
            notes = discussion.attributes.get("notes") or []
            if notes and notes[0].get("author", {}).get("id") == me:
                found.append((str(discussion.id), notes[0]))
        return found

    def our_notes(self, project_id: int, iid: int) -> list[Note]:
        """The first note of every discussion written by the token's own user (GET /user)."""
        with self._errors(f"read the discussions of merge request !{iid}"):
            return [_note(did, first) for did, first in self._our_firsts(project_id, iid)]

    def create_discussion(self, project_id: int, iid: int, body: str,
                          position: dict[str, Any] | None = None) -> Note:
        """Start a discussion, on a diff line when position is given.

        A POST whose answer was lost (a time-out, a reset, a 5xx from a proxy) may have been
        stored: before sending it again, the discussions are read and a first note of ours
        with the same body is taken as the one created. Raises PositionRejected when GitLab
        refuses the position (400) or makes no DiffNote of it.
        """
        data: dict[str, Any] = {"body": body} | ({"position": position} if position else {})
        what = f"post on merge request !{iid}"
        with self._errors(what):
            note, kind = self.policy.call(
                lambda: self._create(project_id, iid, data), what, transient,
                recover=lambda: self._created(project_id, iid, body))
        if position and kind != "DiffNote":
            raise PositionRejected(f"GitLab made a {kind} of it, not a DiffNote")
        return note

    def _create(self, project_id: int, iid: int, data: dict[str, Any]) -> tuple[Note, str | None]:
        try:
            created = self._mr(project_id, iid).discussions.create(data)
        except gitlab.GitlabCreateError as exc:
            if data.get("position") and exc.response_code == 400:
                raise PositionRejected(str(exc.error_message)) from None
            raise
        first = created.attributes["notes"][0]
        return _note(str(created.id), first), first.get("type")

    def _created(self, project_id: int, iid: int, body: str) -> tuple[Note, str | None] | None:
        """The discussion a lost POST of body created, if GitLab stored it."""
        for did, first in self._our_firsts(project_id, iid):
            if str(first.get("body", "")).strip() == body.strip():
                return _note(did, first), first.get("type")
        return None

    def update_note(self, project_id: int, iid: int, note_id: int, body: str) -> None:
        """Edit a note in place (a PUT: retried like a read, as sending it twice is harmless)."""
        with self._errors(f"edit the review on merge request !{iid}"):
            self._mr(project_id, iid).notes.update(note_id, {"body": body})

    def reply_and_resolve(self, project_id: int, iid: int, discussion_id: str, body: str) -> None:
        """Answer in a thread and mark it resolved (never delete anything).

        The reply is a POST: sent again only when the thread holds no note of ours with body.
        """
        what = f"resolve a thread on merge request !{iid}"
        with self._errors(what):
            thread = self._mr(project_id, iid).discussions.get(discussion_id, lazy=True)
            self.policy.call(lambda: thread.notes.create({"body": body}), what, transient,
                             recover=lambda: self._replied(project_id, iid, discussion_id, body))
            self._mr(project_id, iid).discussions.update(discussion_id, {"resolved": True})

    def _replied(self, project_id: int, iid: int, discussion_id: str, body: str) -> bool | None:
        """True when the thread holds a reply of ours with body (a lost POST was stored)."""
        notes = self._mr(project_id, iid).discussions.get(discussion_id).attributes["notes"]
        me = self._user_id()
        return any(n.get("author", {}).get("id") == me and str(n.get("body", "")).strip()
                   == body.strip() for n in notes[1:]) or None


def _note(discussion_id: str, first: dict[str, Any]) -> Note:
    position = first.get("position")
    path = None
    if isinstance(position, dict):
        path = position.get("new_path") or position.get("old_path")
    return Note(discussion_id, int(first["id"]), str(first.get("body", "")),
                bool(first.get("resolved")), str(path) if path else None)


def _one(found: list[tuple[str, int]], branch: str | None) -> tuple[str, int]:
    if len(found) == 1:
        return found[0]
    if not found:
        raise ConfigError(f"no open merge request has source branch {branch!r}: open one, or "
                          "set REVIEWER_MR_IID")
    listed = ", ".join(f"!{iid}" for _, iid in sorted(found, key=lambda f: f[1]))
    raise ConfigError(f"{len(found)} open merge requests ({listed}) have source branch "
                      f"{branch!r}: set REVIEWER_MR_IID to the one to review")


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
