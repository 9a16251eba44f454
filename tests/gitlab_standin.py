"""A GitLab REST API v4 stand-in served over real HTTP, for tests.

python-gitlab talks to it exactly as it would to a real GitLab, so tests exercise the
real client, pagination and error mapping. Diff positions are validated the way GitLab
computes line codes, because that is where review bots break in production. File diffs are cut
by GitLab's diff limits (collapsed, too_large) the way /diffs, /changes and /raw_diffs cut them.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from unidiff.errors import UnidiffParseError
from unidiff.patch import Line, PatchSet

from tests.loopback import Loopback
from tests.quick_actions import Recorder

Json = dict[str, Any]
Result = tuple[int, Any]
Responder = Callable[[str, str, dict[str, str], bytes], tuple[int, bytes, dict[str, str]]]

_BAD_LINE = '400 Bad request - Note {:line_code=>["can\'t be blank", "must be a valid line code"]}'
_DIFF_DEFAULTS: Json = {
    "a_mode": "100644",
    "b_mode": "100644",
    "new_file": False,
    "renamed_file": False,
    "deleted_file": False,
    "generated_file": False,
    "too_large": False,
    "collapsed": False,
    "diff": "",
}
# GitLab's diff limits (lib/gitlab/git/diff.rb, Gitlab::Git::Diff): a file whose patch reaches
# diff_max_patch_bytes (an admin setting: default 200 KiB, at most 500 KiB) is too_large; one that
# reaches a tenth of it is collapsed unless the caller asked for expanded diffs. Both are served
# with an empty "diff". /diffs and plain /changes are not expanded; /changes?access_raw_diffs=true
# is (Gitaly still cuts too_large files: gitlab-org/gitlab#300385); /raw_diffs (GitLab 17.9,
# gitlab-org/gitlab!178813) is Workhorse streaming Gitaly's RawDiff, `git diff --full-index base
# head`, as text with nothing cut.
DEFAULT_MAX_PATCH_BYTES = 200 * 1024
_NO_BLOB = "0" * 40
# git's C-style quoting of unusual path bytes (quote.c, cq_lookup; core.quotePath on).
_CQ = {0x07: "a", 0x08: "b", 0x09: "t", 0x0A: "n", 0x0B: "v", 0x0C: "f", 0x0D: "r", 0x22: '"',
       0x5C: "\\"}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # as sent, still URL-encoded (e.g. /api/v4/projects/group%2Fproj)
    query: dict[str, Any]  # a value, or a list for a `name[]` parameter
    body: dict[str, Any] | None
    auth: str  # "private" | "job" | "none"; token values are deliberately never kept
    at: float = field(default_factory=time.monotonic, compare=False)  # when it arrived


DROP = -1  # the status of no answer at all: the connection is reset


@dataclass
class Fault:
    """GitLab, or a proxy before it, having a bad moment: the next `times` requests whose
    method is method and whose path holds fragment fail so (times -1: all of them).

    status: the error answered (with headers, e.g. Retry-After), or None: the connection is
    reset with no answer. served: the request is carried out first (a POST stores its note)
    and only its answer is lost, as when a proxy times out or a connection drops after GitLab
    did the work.
    """

    method: str
    fragment: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    served: bool = False
    times: int = 1

    def answer(self) -> tuple[int, bytes, dict[str, str]]:
        if self.status is None:
            return DROP, b"", {}
        body = json.dumps({"message": f"{self.status} injected fault"}).encode()
        return self.status, body, dict(self.headers)


@dataclass(frozen=True)
class _Raw:
    """A body that is not JSON (Workhorse streams /raw_diffs as text, chunked, no length)."""

    data: bytes
    content_type: str = "text/plain; charset=utf-8"


class _HTTPError(Exception):
    def __init__(self, status: int, payload: Json) -> None:
        super().__init__(status)
        self.status, self.payload = status, payload


def _not_found() -> _HTTPError:
    return _HTTPError(404, {"message": "404 Not found"})


def _forbidden() -> _HTTPError:
    return _HTTPError(403, {"message": "403 Forbidden"})


def _bad_position() -> _HTTPError:
    return _HTTPError(400, {"message": _BAD_LINE})


@dataclass
class _MergeRequest:
    data: Json
    versions: list[Json] = field(default_factory=list)  # newest first, each with "diffs"
    discussions: list[Json] = field(default_factory=list)


@dataclass
class _Request:
    params: dict[str, str]
    query: dict[str, Any]  # a value, or a list for a `name[]` parameter
    body: Json
    user: Json | None  # None when authenticated by a CI job token

    def arg(self, name: str) -> Any:
        # Grape merges query-string and body parameters; the body wins.
        return self.body.get(name, self.query.get(name))


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _line_number(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad_position() from None


def _parse_body(content_type: str, raw: bytes) -> Json | None:
    if not raw:
        return None
    if "json" in content_type:
        parsed = json.loads(raw)
        return parsed if isinstance(parsed, dict) else None
    # Rails-style nested form keys (position[line_range][start][new_line]=3), as curl sends.
    out: Json = {}
    for key, value in parse_qsl(raw.decode(), keep_blank_values=True):
        *parents, leaf = re.findall(r"[^\[\]]+", key) or [key]
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _hunks(file: Json) -> list[list[Line]]:
    text = file.get("diff") or ""
    if not text:
        return []  # too_large / collapsed / binary: GitLab has no lines to anchor to
    headers = f"--- a/{file['old_path']}\n+++ b/{file['new_path']}\n"
    try:
        patch = PatchSet(headers + text + ("" if text.endswith("\n") else "\n"))
    except UnidiffParseError:
        return []
    return [list(hunk) for patched in patch for hunk in patched]


def _exact(line: Line, old: int | None, new: int | None) -> bool:
    # GitLab finds the diff line whose (old, new) pair is exactly the one given.
    if old is None and new is not None:
        return bool(line.is_added) and line.target_line_no == new
    if new is None and old is not None:
        return bool(line.is_removed) and line.source_line_no == old
    if old is not None and new is not None:
        return bool(line.is_context) and (line.source_line_no, line.target_line_no) == (old, new)
    return False


def _loose(line: Line, old: int | None, new: int | None) -> bool:
    if old is None and new is None:
        return False
    return old in (None, line.source_line_no) and new in (None, line.target_line_no)


def _hunk_of(hunks: list[list[Line]], old: int | None, new: int | None, exact: bool) -> int | None:
    match = _exact if exact else _loose
    return next((i for i, hunk in enumerate(hunks) for ln in hunk if match(ln, old, new)), None)


def _check_line_range(hunks: list[list[Line]], line_range: Any) -> None:
    found: set[int | None] = set()
    for end in ("start", "end"):
        point = line_range.get(end) if isinstance(line_range, dict) else None
        if not isinstance(point, dict):
            raise _bad_position()
        old, new = _line_number(point.get("old_line")), _line_number(point.get("new_line"))
        found.add(_hunk_of(hunks, old, new, exact=False))
    if len(found) != 1 or None in found:  # both ends must sit in one and the same hunk
        raise _bad_position()


def _validate_position(version: Json, pos: Any, max_patch_bytes: int) -> Json:
    if not isinstance(pos, dict) or pos.get("position_type") != "text":
        raise _bad_position()
    if any(pos.get(f"{s}_sha") != version[f"{s}_commit_sha"] for s in ("base", "start", "head")):
        raise _bad_position()
    file = next((f for f in version["diffs"] if f["new_path"] == pos.get("new_path")), None)
    if file is None or pos.get("old_path", file["old_path"]) != file["old_path"]:
        raise _bad_position()
    old, new = _line_number(pos.get("old_line")), _line_number(pos.get("new_line"))
    if (file["new_file"] and old is not None) or (file["deleted_file"] and new is not None):
        raise _bad_position()
    # GitLab places a note against the diff read from the repository: a collapsed file's
    # lines take notes, a too_large file has none.
    hunks = _hunks(_served(file, max_patch_bytes, expanded=True))
    if _hunk_of(hunks, old, new, exact=True) is None:
        raise _bad_position()
    if pos.get("line_range") is not None:
        _check_line_range(hunks, pos["line_range"])
    return {
        **pos,
        "position_type": "text",
        "old_path": file["old_path"],
        "new_path": file["new_path"],
        "old_line": old,
        "new_line": new,
    }


def _complete_diff(file: Json) -> Json:
    out = {**_DIFF_DEFAULTS, **file}
    out.setdefault("old_path", out.get("new_path"))
    out.setdefault("new_path", out["old_path"])
    # GitLab prints a missing side's mode as "0" (Gitaly's mode 0 through Integer#to_s(8)).
    if file.get("new_file") and "a_mode" not in file:
        out["a_mode"] = "0"
    if file.get("deleted_file") and "b_mode" not in file:
        out["b_mode"] = "0"
    return out


def _served(file: Json, max_patch_bytes: int, expanded: bool) -> Json:
    """A stored diff object (full text, maybe flagged) as GitLab serves it under its limits.

    A file added with ``too_large`` or ``collapsed`` set is cut whatever its size, so a test
    can have GitLab cut a small file; its ``diff`` stays what expanded reads return.
    """
    size = len(file["diff"].encode())
    too_large = bool(file["too_large"]) or size >= max_patch_bytes
    limit = max_patch_bytes // 10
    # A too_large file's diff is emptied first, so GitLab does not report it collapsed too.
    collapsed = not expanded and not too_large and (bool(file["collapsed"]) or size >= limit)
    cut = too_large or collapsed
    return {**file, "diff": "" if cut else file["diff"], "too_large": too_large,
            "collapsed": collapsed}


def git_quote(name: str) -> str:
    """A path as git prints it in a patch: as is, or C-style quoted if any byte needs it."""
    data = name.encode()
    if not any(b < 0x20 or b >= 0x7F or b in _CQ for b in data):
        return name
    out = "".join(f"\\{_CQ[b]}" if b in _CQ else f"\\{b:03o}" if b < 0x20 or b >= 0x7F
                  else chr(b) for b in data)
    return f'"{out}"'


def _label(name: str) -> str:
    # git ends a ---/+++ name holding a space with a tab, so a reader knows where it ends.
    return name + ("\t" if " " in name else "")


def _git_section(file: Json) -> str:
    """One file of `git diff --full-index` output, rebuilt from its GitLab diff object."""
    old, new = file["old_path"], file["new_path"]
    body: str = file["diff"]
    a_mode, b_mode = file["a_mode"], file["b_mode"]
    lines = [f"diff --git {git_quote('a/' + old)} {git_quote('b/' + new)}"]
    if file["new_file"]:
        lines.append(f"new file mode {b_mode}")
    elif file["deleted_file"]:
        lines.append(f"deleted file mode {a_mode}")
    elif a_mode != b_mode:
        lines += [f"old mode {a_mode}", f"new mode {b_mode}"]
    if old != new:
        lines += [f"similarity index {90 if body else 100}%", f"rename from {git_quote(old)}",
                  f"rename to {git_quote(new)}"]
    if not body:
        return "\n".join(lines) + "\n"
    before = _NO_BLOB if file["new_file"] else hashlib.sha1(f"{old}\0".encode()).hexdigest()
    after = _NO_BLOB if file["deleted_file"] else hashlib.sha1(body.encode()).hexdigest()
    both = not (file["new_file"] or file["deleted_file"]) and a_mode == b_mode
    lines.append(f"index {before}..{after}" + (f" {a_mode}" if both else ""))
    minus = "/dev/null" if file["new_file"] else git_quote("a/" + old)
    plus = "/dev/null" if file["deleted_file"] else git_quote("b/" + new)
    if body.startswith("Binary files "):
        return "\n".join([*lines, f"Binary files {minus} and {plus} differ"]) + "\n"
    lines += [f"--- {_label(minus)}", f"+++ {_label(plus)}"]
    return "\n".join(lines) + "\n" + body + ("" if body.endswith("\n") else "\n")


def _git(repo: Path, *args: str, data: bytes | None = None) -> bytes:
    # git's defaults pinned, so a developer's ~/.gitconfig cannot change what GitLab would see.
    pinned = ["-c", "core.quotePath=true", "-c", "diff.renames=true", "-c", "diff.noprefix=false",
              "-c", "diff.mnemonicPrefix=false", "-c", "color.ui=false",
              "-c", "user.name=Stand-in", "-c", "user.email=standin@example.com"]
    return subprocess.run(["git", "-C", str(repo), *pinned, *args], input=data, check=True,
                          capture_output=True).stdout


Entry = bytes | tuple[str, bytes] | None


def git_commit(repo: Path, parent: str | None, files: dict[str, Entry]) -> str:
    """Commit parent's tree changed by files, straight into git's index (no work tree).

    Each path maps to its content (mode 100644), to (mode, content) for an executable, a
    symlink (content: its target) or a submodule (160000, content: the commit id), or to None
    to delete it. Any name git can store works, tabs and newlines included. Returns the commit.
    """
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q")
    _git(repo, "read-tree", *([parent] if parent else ["--empty"]))
    records = []
    for path, entry in files.items():
        if entry is None:
            records.append(f"0 {_NO_BLOB}\t{path}")
            continue
        mode, content = entry if isinstance(entry, tuple) else ("100644", entry)
        blob = content if mode == "160000" else _git(repo, "hash-object", "-w", "--stdin",
                                                      data=content)
        records.append(f"{mode} {blob.decode().strip()}\t{path}")
    _git(repo, "update-index", "-z", "--index-info", data="\0".join(records).encode() + b"\0")
    tree = _git(repo, "write-tree").decode().strip()
    lineage = ["-p", parent] if parent else []
    return _git(repo, "commit-tree", tree, *lineage, "-m", "change").decode().strip()


def _raw_entries(listing: bytes) -> list[tuple[list[str], list[bytes]]]:
    """`git diff --raw -z`: per file its ":mode mode sha sha status" fields and its paths."""
    tokens, entries = listing.split(b"\0"), []
    i = 0
    while i < len(tokens) and tokens[i].startswith(b":"):
        fields = tokens[i][1:].decode().split()
        count = 2 if fields[4][0] in "RC" else 1
        entries.append((fields, tokens[i + 1 : i + 1 + count]))
        i += 1 + count
    return entries


def _diff_object(fields: list[str], paths: list[bytes], section: bytes) -> Json:
    status = fields[4][0]
    hunks = re.search(rb"^(@@|Binary files )", section, re.MULTILINE)
    # GitLab converts what git printed to UTF-8, replacing what is not (EncodingHelper).
    old, new = (p.decode("utf-8", "replace") for p in (paths[0], paths[-1]))
    return {
        "old_path": old, "new_path": new,
        "a_mode": format(int(fields[0], 8), "o"), "b_mode": format(int(fields[1], 8), "o"),
        "new_file": status == "A", "deleted_file": status == "D", "renamed_file": status == "R",
        "diff": section[hunks.start():].decode("utf-8", "replace") if hunks else "",
    }


def files_from_git(repo: Path, base: str, head: str) -> tuple[list[Json], bytes]:
    """What GitLab makes of base..head in a real repository: /diffs objects and /raw_diffs bytes.

    The raw diff is `git diff --full-index base head`, as Gitaly's RawDiff runs it. The diff
    objects carry the exact (unquoted) paths, modes as GitLab prints them, and each file's patch
    from its first hunk, as Gitaly's CommitDiff hands them to GitLab.
    """
    raw = _git(repo, "diff", "--full-index", "--no-ext-diff", base, head)
    entries = _raw_entries(_git(repo, "diff", "--raw", "-z", "--no-abbrev", base, head))
    sections = [s for s in re.split(rb"^(?=diff --git )", raw, flags=re.MULTILINE) if s]
    files = [_diff_object(f, p, s) for (f, p), s in zip(entries, sections, strict=True)]
    return files, raw


def _auth_kind(headers: dict[str, str]) -> str:
    if headers.get("private-token") or headers.get("authorization"):
        return "private"
    return "job" if headers.get("job-token") else "none"


class _Store:
    """All GitLab state. Every method runs with FakeGitLab's lock held."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.diffs_endpoint = True
        self.raw_diffs_endpoint = True
        self.max_patch_bytes = DEFAULT_MAX_PATCH_BYTES
        self.users: dict[int, Json] = {}
        self.tokens: dict[str, int] = {}
        self.job_tokens: set[str] = set()
        self.projects: dict[int, Json] = {}
        self.mrs: dict[tuple[int, int], _MergeRequest] = {}
        self.files: dict[tuple[int, str], dict[str, bytes]] = {}  # (project, ref) -> tree
        self.repos: dict[int, Path] = {}  # project -> a real git repository (compare, merge_base)
        # Separate id ranges per kind, so confusing a note id with an iid fails loudly.
        bases = {"user": 1, "project": 1, "mr": 101, "version": 1001, "note": 5001, "thread": 1}
        self.ids = {kind: itertools.count(base) for kind, base in bases.items()}
        self.last_time = datetime.now(UTC)
        self.recorder = Recorder()  # what GitLab would run or notify for each note written

    def now(self) -> str:
        # Strictly increasing, so an edit always changes updated_at, even within a millisecond.
        self.last_time = max(datetime.now(UTC), self.last_time + timedelta(milliseconds=1))
        stamp = self.last_time
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"

    def add_user(self, username: str, token: str | None) -> Json:
        uid = next(self.ids["user"])
        digest = hashlib.md5(username.encode(), usedforsecurity=False).hexdigest()
        self.users[uid] = {
            "id": uid,
            "username": username,
            "name": username,
            "state": "active",
            "avatar_url": f"https://www.gravatar.com/avatar/{digest}?s=80&d=identicon",
            "web_url": f"{self.base_url}/{username}",
        }
        if token is not None:
            self.tokens[token] = uid
        return self.users[uid]

    def user_named(self, username: str) -> Json:
        user = next((u for u in self.users.values() if u["username"] == username), None)
        return user if user is not None else self.add_user(username, None)

    def add_version(self, mr: _MergeRequest, files: list[Json], shas: tuple[str, str, str],
                    raw_diff: bytes | None = None) -> None:
        base, start, head = shas
        diffs, now = [_complete_diff(f) for f in files], self.now()
        mr.versions.insert(
            0,
            {
                "id": next(self.ids["version"]),
                "head_commit_sha": head,
                "base_commit_sha": base,
                "start_commit_sha": start,
                "created_at": now,
                "merge_request_id": mr.data["id"],
                "state": "collected",
                "real_size": str(len(diffs)),
                "diffs": diffs,  # full text: GitLab's limits apply as they are served
                "raw_diff": raw_diff,  # /raw_diffs bytes; None: rebuilt from the diffs
            },
        )
        refs = {"base_sha": base, "head_sha": head, "start_sha": start}
        mr.data.update(sha=head, diff_refs=refs, updated_at=now)

    def new_note(
        self,
        mr: _MergeRequest,
        author: Json | None,
        body: str,
        *,
        position: Json | None = None,
        kind: str | None = "DiscussionNote",
        resolvable: bool = True,
    ) -> Json:
        now = self.now()
        note: Json = {
            "id": next(self.ids["note"]),
            "type": kind,
            "body": body,
            "attachment": None,
            "author": author,
            "created_at": now,
            "updated_at": now,
            "system": False,
            "noteable_id": mr.data["id"],
            "noteable_type": "MergeRequest",
            "noteable_iid": mr.data["iid"],
            "resolvable": resolvable,
            "resolved": False,
            "resolved_by": None,
            "resolved_at": None,
        }
        if position is not None:
            note["position"] = position
        self.recorder.note(note["id"], body)
        return note

    def new_discussion(self, mr: _MergeRequest, note: Json, individual: bool) -> Json:
        seed = f"discussion-{next(self.ids['thread'])}".encode()
        thread_id = hashlib.sha1(seed, usedforsecurity=False).hexdigest()  # 40 hex, like GitLab
        discussion = {"id": thread_id, "individual_note": individual, "notes": [note]}
        mr.discussions.append(discussion)
        return discussion

    def authenticate(self, headers: dict[str, str], job_ok: bool) -> Json | None:
        bearer = headers.get("authorization", "")
        token = headers.get("private-token") or bearer.removeprefix("Bearer ").strip()
        if token in self.tokens:
            return self.users[self.tokens[token]]
        if not token and headers.get("job-token", "") in self.job_tokens:
            if not job_ok:  # CI_JOB_TOKEN reaches only a short allow-list of endpoints
                raise _forbidden()
            return None
        raise _HTTPError(401, {"message": "401 Unauthorized"})

    def project(self, req: _Request) -> Json:
        key = req.params["pid"]
        found = (
            self.projects.get(int(key))
            if key.isdigit()
            else next((p for p in self.projects.values() if p["path_with_namespace"] == key), None)
        )
        if found is None:
            raise _HTTPError(404, {"message": "404 Project Not Found"})
        return found

    def mr(self, req: _Request) -> _MergeRequest:
        found = self.mrs.get((self.project(req)["id"], _as_int(req.params["iid"], 0)))
        if found is None:
            raise _not_found()
        return found

    def discussion(self, req: _Request) -> Json:
        wanted = req.params["did"]
        found = next((d for d in self.mr(req).discussions if d["id"] == wanted), None)
        if found is None:
            raise _not_found()
        return found

    def note(self, req: _Request) -> tuple[Json, Json]:
        pool = [self.discussion(req)] if "did" in req.params else self.mr(req).discussions
        wanted = _as_int(req.params["nid"], 0)
        found = next(((d, n) for d in pool for n in d["notes"] if n["id"] == wanted), None)
        if found is None:
            raise _not_found()
        return found


class FakeGitLab:
    """In-memory GitLab behind a real, threaded HTTP server on 127.0.0.1."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        # (method, path fragment, status): answer matching requests with that error, as a
        # GitLab having a bad day would (a 500 on posting, say).
        self.failures: list[tuple[str, str, int]] = []
        # Faults that pass (or not), with headers, lost answers and resets: see Fault.
        self.faults: list[Fault] = []
        self._lock = threading.RLock()
        # Bound here (port 0 = any free port) so url and seeded web_urls exist before start().
        self._loop = Loopback(_Server(self._respond))
        self._store = _Store(self.url)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._loop.port}"

    @property
    def diffs_endpoint(self) -> bool:
        return self._store.diffs_endpoint

    @diffs_endpoint.setter
    def diffs_endpoint(self, enabled: bool) -> None:
        self._store.diffs_endpoint = enabled

    @property
    def raw_diffs_endpoint(self) -> bool:
        """False: /raw_diffs answers 404, as GitLab before 17.9 does."""
        return self._store.raw_diffs_endpoint

    @raw_diffs_endpoint.setter
    def raw_diffs_endpoint(self, enabled: bool) -> None:
        self._store.raw_diffs_endpoint = enabled

    @property
    def max_patch_bytes(self) -> int:
        """GitLab's diff_max_patch_bytes: files from it are too_large, from a tenth collapsed."""
        return self._store.max_patch_bytes

    @max_patch_bytes.setter
    def max_patch_bytes(self, limit: int) -> None:
        self._store.max_patch_bytes = limit

    def start(self) -> FakeGitLab:
        self._loop.start()
        return self

    def stop(self) -> None:
        self._loop.stop()

    def __enter__(self) -> FakeGitLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_user(self, username: str, token: str | None = None) -> Json:
        with self._lock:
            return copy.deepcopy(self._store.add_user(username, token))

    def add_job_token(self, token: str) -> None:
        with self._lock:
            self._store.job_tokens.add(token)

    def add_project(self, path_with_namespace: str, forked_from: int | None = None) -> Json:
        with self._lock:
            pid = next(self._store.ids["project"])
            name = path_with_namespace.rsplit("/", 1)[-1]
            self._store.projects[pid] = {
                "id": pid,
                "name": name,
                "path": name,
                "path_with_namespace": path_with_namespace,
                "web_url": f"{self.url}/{path_with_namespace}",
                "default_branch": "main",
            }
            if forked_from is not None:  # GET /projects/:id names a fork's upstream
                upstream = self._store.projects[forked_from]
                self._store.projects[pid]["forked_from_project"] = {
                    k: upstream[k] for k in ("id", "name", "path", "path_with_namespace",
                                             "web_url")}
            return copy.deepcopy(self._store.projects[pid])

    def add_files(self, project_id: int, ref: str, files: dict[str, bytes]) -> None:
        """The repository's files at a ref (a branch name or a commit SHA), by path."""
        with self._lock:
            self._store.files[(project_id, ref)] = dict(files)

    def add_repository(self, project_id: int, repo: Path) -> None:
        """A real git repository behind the project's compare and merge_base endpoints (make
        its commits with git_commit, an MR's diffs with files_from_git)."""
        with self._lock:
            self._store.repos[project_id] = repo

    def add_merge_request(
        self,
        project_id: int,
        *,
        iid: int,
        title: str,
        files: list[Json],
        description: str = "",
        source_branch: str = "feature",
        target_branch: str = "main",
        base_sha: str = "a" * 40,
        start_sha: str = "b" * 40,
        head_sha: str = "c" * 40,
        state: str = "opened",
        draft: bool = False,
        raw_diff: bytes | None = None,
        source_project_id: int | None = None,  # a fork's MR: the fork it comes from
    ) -> Json:
        with self._lock:
            store, now = self._store, self._store.now()
            data = {
                "id": next(store.ids["mr"]),
                "iid": iid,
                "project_id": project_id,
                "title": title,
                "description": description,
                "state": state,
                "draft": draft,
                "work_in_progress": draft,
                "source_branch": source_branch,
                "target_branch": target_branch,
                "source_project_id": source_project_id or project_id,
                "target_project_id": project_id,
                "sha": head_sha,
                "diff_refs": {},
                "web_url": f"{store.projects[project_id]['web_url']}/-/merge_requests/{iid}",
                "author": store.user_named("mr-author"),
                "created_at": now,
                "updated_at": now,
            }
            mr = store.mrs[(project_id, iid)] = _MergeRequest(data)
            store.add_version(mr, files, (base_sha, start_sha, head_sha), raw_diff)
            return copy.deepcopy(mr.data)

    def push(
        self,
        project_id: int,
        iid: int,
        *,
        files: list[Json],
        head_sha: str,
        base_sha: str | None = None,
        start_sha: str | None = None,
        raw_diff: bytes | None = None,
    ) -> None:
        with self._lock:
            mr = self._store.mrs[(project_id, iid)]
            base = base_sha or mr.versions[0]["base_commit_sha"]
            start = start_sha or mr.versions[0]["start_commit_sha"]
            self._store.add_version(mr, files, (base, start, head_sha), raw_diff)

    @property
    def recorder(self) -> Recorder:
        """The quick actions and mentions GitLab would act on, from every note written."""
        return self._store.recorder

    def discussions(self, project_id: int, iid: int) -> list[Json]:
        with self._lock:
            return copy.deepcopy(self._store.mrs[(project_id, iid)].discussions)

    def notes(self, project_id: int, iid: int) -> list[Json]:
        with self._lock:
            threads = self._store.mrs[(project_id, iid)].discussions
            return copy.deepcopy([n for d in threads for n in d["notes"]])

    def add_discussion(self, project_id: int, iid: int, body: str, author_username: str) -> Json:
        with self._lock:
            mr = self._store.mrs[(project_id, iid)]
            note = self._store.new_note(mr, self._store.user_named(author_username), body)
            return copy.deepcopy(self._store.new_discussion(mr, note, individual=False))

    def _respond(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        split = urlsplit(target)
        query: dict[str, Any] = dict(parse_qsl(split.query, keep_blank_values=True))
        # Grape reads `refs[]=a&refs[]=b` as a list (GET .../repository/merge_base).
        query |= {k: [v for n, v in parse_qsl(split.query) if n == k] for k in query
                  if k.endswith("[]")}
        with self._lock:  # serialise inside the lock: handlers return live state
            try:
                body = _parse_body(headers.get("content-type", ""), raw)
            except (ValueError, UnicodeDecodeError):
                body = None
            self.requests.append(Recorded(method, split.path, query, body, _auth_kind(headers)))
            fault = self._fault(method, split.path)
            if fault is not None and not fault.served:
                return fault.answer()
            extra: dict[str, str] = {}
            try:
                self._injected_failure(method, split.path)
                status, payload = self._dispatch(method, split.path, query, body or {}, headers)
                if isinstance(payload, list):  # every GitLab list endpoint is paginated
                    payload, extra = self._paginate(payload, split.path, query)
            except _HTTPError as err:
                status, payload = err.status, err.payload
            except Exception as err:  # a stand-in bug should surface as a 500, not a hang-up
                status, payload = 500, {"message": f"500 stand-in error: {err!r}"}
            if fault is not None:  # served: the work is done, its answer is lost
                return fault.answer()
            if isinstance(payload, _Raw):
                extra |= {"Content-Type": payload.content_type, "Transfer-Encoding": "chunked"}
                return status, payload.data, extra
            return status, b"" if status == 204 else json.dumps(payload).encode(), extra

    def _fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times != 0 and fault.method == method and fault.fragment in path:
                fault.times -= 1 if fault.times > 0 else 0
                return fault
        return None

    def _injected_failure(self, method: str, path: str) -> None:
        for verb, fragment, status in self.failures:
            if verb == method and fragment in path:
                raise _HTTPError(status, {"message": f"{status} injected failure"})

    def _dispatch(
        self, method: str, path: str, query: dict[str, Any], body: Json, headers: dict[str, str]
    ) -> Result:
        for verb, pattern, handler, job_ok in _ROUTES:
            found = pattern.fullmatch(path)
            if found and verb == method:
                user = self._store.authenticate(headers, job_ok)
                params = {k: unquote(v) for k, v in found.groupdict().items()}
                return handler(self._store, _Request(params, query, body, user))
        raise _HTTPError(404, {"error": "404 Not Found"})

    def _paginate(
        self, items: list[Any], path: str, query: dict[str, Any]
    ) -> tuple[list[Any], dict[str, str]]:
        per_page = min(max(_as_int(query.get("per_page"), 20), 1), 100)
        page = max(_as_int(query.get("page"), 1), 1)
        pages = max(1, math.ceil(len(items) / per_page))
        others = {k: v for k, v in query.items() if k not in ("page", "per_page")}

        def link(number: int, rel: str) -> str:
            params = urlencode({"page": number, "per_page": per_page, **others})
            return f'<{self.url}{path}?{params}>; rel="{rel}"'

        links = [link(page - 1, "prev")] if page > 1 else []
        links += [link(page + 1, "next")] if page < pages else []
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(per_page),
            "X-Total": str(len(items)),
            "X-Total-Pages": str(pages),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if page > 1 else "",
            "Link": ", ".join([*links, link(1, "first"), link(pages, "last")]),
        }
        return items[(page - 1) * per_page : page * per_page], headers


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung keep-alive connection must never block interpreter exit

    def __init__(self, respond: Responder) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.respond = respond


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests.Session expects from GitLab
    timeout = 30  # drop idle keep-alive connections instead of holding a thread forever
    # TCP_NODELAY, as GitLab (puma, nginx) and model servers (uvicorn, llama-server) set it:
    # http.server sends headers and body apart, and Nagle's algorithm would hold the body for
    # the client's delayed ACK, ~40 ms a request that no real server costs.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def _serve(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        server = cast(_Server, self.server)
        status, data, extra = server.respond(self.command, self.path, headers, raw)
        if status == DROP:  # SO_LINGER 0: closing sends a reset, not an orderly end
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        chunked = extra.get("Transfer-Encoding") == "chunked"
        if status != 204 and "Content-Type" not in extra:
            self.send_header("Content-Type", "application/json")
        if status != 204 and not chunked:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not chunked:
            self.wfile.write(data)
            return
        for start in range(0, len(data), 16384):
            piece = data[start : start + 16384]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


# Note::MAX_NOTE_LENGTH; the model validation's message as the API returns it (seen in
# renovatebot/renovate#7775 and NARKOZ/gitlab#610).
MAX_NOTE_LENGTH = 1_000_000


def _check_length(body: str) -> str:
    if len(body) > MAX_NOTE_LENGTH:
        raise _HTTPError(400, {"message": 'Note {:note=>["is too long (maximum is 1000000 '
                                          'characters)"]}'})
    return body


def _require_body(req: _Request) -> str:
    body = req.arg("body")
    if not isinstance(body, str) or not body:
        raise _HTTPError(400, {"error": "body is missing"})
    return _check_length(body)


def _own(req: _Request, note: Json) -> None:
    # Only the author may edit or delete a note's text (admins aside, which we do not model).
    if req.user is None or (note["author"] or {}).get("id") != req.user["id"]:
        raise _forbidden()


def _set_resolved(store: _Store, note: Json, resolved: Any, user: Json | None) -> None:
    if note["resolvable"]:
        now, done = store.now(), _truthy(resolved)
        note.update(
            resolved=done,
            updated_at=now,
            resolved_by=user if done else None,
            resolved_at=now if done else None,
        )


def _list_mrs(store: _Store, req: _Request) -> Result:
    pid = store.project(req)["id"]
    mrs = [mr.data for (p, _), mr in store.mrs.items() if p == pid]
    state = req.query.get("state", "all")
    filters = {
        "state": None if state == "all" else state,
        "source_branch": req.query.get("source_branch"),
        "target_branch": req.query.get("target_branch"),
    }
    mrs = [m for m in mrs if all(v is None or m[k] == v for k, v in filters.items())]
    return 200, sorted(mrs, key=lambda m: m["id"], reverse=True)  # newest first, like GitLab


def _list_versions(store: _Store, req: _Request) -> Result:
    versions, hidden = store.mr(req).versions, ("diffs", "raw_diff")
    return 200, [{k: v for k, v in ver.items() if k not in hidden} for ver in versions]


def _get_version(store: _Store, req: _Request) -> Result:
    wanted = _as_int(req.params["vid"], 0)
    version = next((v for v in store.mr(req).versions if v["id"] == wanted), None)
    if version is None:
        raise _not_found()
    diffs = [_served(f, store.max_patch_bytes, False) for f in version["diffs"]]
    return 200, {k: v for k, v in version.items() if k != "raw_diff"} | {"diffs": diffs}


def _list_diffs(store: _Store, req: _Request) -> Result:
    mr = store.mr(req)
    if not store.diffs_endpoint:  # GitLab before 15.7 has no /diffs; clients fall back
        raise _HTTPError(404, {"message": "404 Not Found"})
    return 200, [_served(f, store.max_patch_bytes, False) for f in mr.versions[0]["diffs"]]


def _get_changes(store: _Store, req: _Request) -> Result:
    mr = store.mr(req)
    expanded = _truthy(req.query.get("access_raw_diffs"))
    changes = [_served(f, store.max_patch_bytes, expanded) for f in mr.versions[0]["diffs"]]
    return 200, {
        **mr.data,
        "changes": changes,
        "changes_count": str(len(changes)),
        "overflow": False,
    }


def _raw_diffs(store: _Store, req: _Request) -> Result:
    version = store.mr(req).versions[0]
    if not store.raw_diffs_endpoint:  # before GitLab 17.9: no such route
        raise _HTTPError(404, {"error": "404 Not Found"})
    raw = version["raw_diff"]
    if raw is None:
        raw = "".join(_git_section(f) for f in version["diffs"]).encode()
    return 200, _Raw(raw)


def _tree_files(store: _Store, req: _Request) -> dict[str, bytes]:
    project = store.project(req)
    ref = str(req.query.get("ref") or project["default_branch"])
    if (project["id"], ref) not in store.files:
        raise _HTTPError(404, {"message": "404 Tree Not Found"})
    return store.files[(project["id"], ref)]


def _repository_tree(store: _Store, req: _Request) -> Result:
    """GET /projects/:id/repository/tree: entries under path (all depths with recursive=true);
    404 "Tree Not Found" when the path is no folder at that ref (GitLab's repository API)."""
    files, folder = _tree_files(store, req), str(req.query.get("path") or "").strip("/")
    prefix = f"{folder}/" if folder else ""
    entries: dict[str, str] = {}
    for path in (p for p in files if p.startswith(prefix)):
        parts = path[len(prefix):].split("/")
        for depth in range(1, len(parts)):  # the folders on the way
            entries[prefix + "/".join(parts[:depth])] = "tree"
        entries[path] = "blob"
    if not _truthy(req.query.get("recursive")):
        entries = {p: k for p, k in entries.items() if "/" not in p[len(prefix):]}
    if folder and not entries:
        raise _HTTPError(404, {"message": "404 Tree Not Found"})
    return 200, [{"id": hashlib.sha1(p.encode()).hexdigest(), "name": p.rsplit("/", 1)[-1],
                  "type": kind, "path": p, "mode": "040000" if kind == "tree" else "100644"}
                 for p, kind in sorted(entries.items())]


def _raw_file(store: _Store, req: _Request) -> Result:
    """GET /projects/:id/repository/files/:file_path/raw?ref=: the bytes, or 404."""
    files, path = _tree_files(store, req), unquote(req.params["file"])
    if path not in files:
        raise _HTTPError(404, {"message": "404 File Not Found"})
    return 200, _Raw(files[path], "text/plain; charset=utf-8")


def _repo(store: _Store, req: _Request) -> Path:
    repo = store.repos.get(store.project(req)["id"])
    if repo is None:
        raise _HTTPError(404, {"message": "404 Repository Not Found"})
    return repo


def _commit(repo: Path, ref: str) -> Json | None:
    """A commit as GitLab's Entities::Commit shows it (the fields we need), or None."""
    try:
        sha = _git(repo, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}").decode().strip()
    except subprocess.CalledProcessError:
        return None
    parents = _git(repo, "rev-list", "--parents", "-n", "1", sha).decode().split()[1:]
    return {"id": sha, "short_id": sha[:8], "title": "change", "message": "change",
            "parent_ids": parents}


def _merge_base(store: _Store, req: _Request) -> Result:
    """GET /projects/:id/repository/merge_base?refs[]=a&refs[]=b: the common ancestor's
    commit; 400 "Could not find ref: x" for an unknown ref, 404 "Merge Base Not Found" for
    refs with no common history (lib/api/repositories.rb)."""
    repo = _repo(store, req)
    refs: list[str] = req.query.get("refs[]") or []
    if len(refs) < 2:
        raise _HTTPError(400, {"message": "Provide at least 2 refs"})
    unknown = [r for r in refs if _commit(repo, r) is None]
    if unknown:
        raise _HTTPError(400, {"message": f"Could not find ref: {', '.join(unknown)}"})
    try:
        sha = _git(repo, "merge-base", *refs).decode().strip()
    except subprocess.CalledProcessError:
        raise _HTTPError(404, {"message": "404 Merge Base Not Found"}) from None
    return 200, _commit(repo, sha)


def _compare(store: _Store, req: _Request) -> Result:
    """GET /projects/:id/repository/compare?from=&to=&straight=: the commits and file diffs
    from..to (straight=true), or from the merge base of both to `to` (the default); 404 for an
    unknown ref."""
    repo = _repo(store, req)
    ends = [_commit(repo, str(req.query.get(k) or "")) for k in ("from", "to")]
    if ends[0] is None or ends[1] is None:
        raise _HTTPError(404, {"message": "404 Ref Not Found"})
    start, head = ends[0]["id"], ends[1]["id"]
    if not _truthy(req.query.get("straight")):
        start = _git(repo, "merge-base", start, head).decode().strip()
    shas = _git(repo, "rev-list", "--reverse", f"{start}..{head}").decode().split()
    files, _ = files_from_git(repo, start, head)
    return 200, {"commit": ends[1], "commits": [_commit(repo, s) for s in shas],
                 "diffs": [_complete_diff(f) for f in files], "compare_timeout": False,
                 "compare_same_ref": start == head,
                 "web_url": f"{store.project(req)['web_url']}/-/compare/{start}...{head}"}


def _create_discussion(store: _Store, req: _Request) -> Result:
    mr, body, position = store.mr(req), _require_body(req), req.arg("position")
    if position is not None:
        position = _validate_position(mr.versions[0], position, store.max_patch_bytes)
    kind = "DiscussionNote" if position is None else "DiffNote"
    note = store.new_note(mr, req.user, body, position=position, kind=kind)
    return 201, store.new_discussion(mr, note, individual=False)


def _create_note(store: _Store, req: _Request) -> Result:
    mr, body = store.mr(req), _require_body(req)
    note = store.new_note(mr, req.user, body, kind=None, resolvable=False)
    store.new_discussion(mr, note, individual=True)
    return 201, note


def _reply(store: _Store, req: _Request) -> Result:
    discussion, body = store.discussion(req), _require_body(req)
    first = discussion["notes"][0]
    # A reply in a diff thread is itself a DiffNote anchored at the thread's position.
    note = store.new_note(
        store.mr(req),
        req.user,
        body,
        position=first.get("position"),
        kind=first["type"],
        resolvable=first["resolvable"],
    )
    discussion["notes"].append(note)
    return 201, note


def _resolve_discussion(store: _Store, req: _Request) -> Result:
    discussion, resolved = store.discussion(req), req.arg("resolved")
    if resolved is None:
        raise _HTTPError(400, {"error": "resolved is missing"})
    for note in discussion["notes"]:
        _set_resolved(store, note, resolved, req.user)
    return 200, discussion


def _list_notes(store: _Store, req: _Request) -> Result:
    notes = [n for d in store.mr(req).discussions for n in d["notes"]]
    # This endpoint defaults to created_at descending, unlike /discussions.
    return 200, sorted(notes, key=lambda n: n["id"], reverse=req.query.get("sort") != "asc")


def _update_note(store: _Store, req: _Request) -> Result:
    _, note = store.note(req)
    body, resolved = req.arg("body"), req.arg("resolved")
    if body is None and resolved is None:
        raise _HTTPError(400, {"error": "body, resolved are missing"})
    if body is not None:
        _own(req, note)
        note.update(body=_check_length(str(body)), updated_at=store.now())
        store.recorder.note(note["id"], note["body"])
    if resolved is not None:
        _set_resolved(store, note, resolved, req.user)
    return 200, note


def _delete_note(store: _Store, req: _Request) -> Result:
    discussion, note = store.note(req)
    _own(req, note)
    discussion["notes"].remove(note)
    if not discussion["notes"]:
        store.mr(req).discussions.remove(discussion)
    return 204, None


_P = r"/api/v4/projects/(?P<pid>[^/]+)"
_MR = _P + r"/merge_requests/(?P<iid>[^/]+)"
_THREAD = _MR + r"/discussions/(?P<did>[^/]+)"
_Endpoint = Callable[[_Store, _Request], Result]
# (method, path pattern, handler, reachable with a CI job token)
_ROUTES: list[tuple[str, re.Pattern[str], _Endpoint, bool]] = [
    (verb, re.compile(pattern), handler, job_ok)
    for verb, pattern, handler, job_ok in [
        ("GET", r"/api/v4/user", lambda s, r: (200, r.user), False),
        ("GET", _P, lambda s, r: (200, s.project(r)), True),
        ("GET", _P + r"/merge_requests", _list_mrs, True),
        ("GET", _MR, lambda s, r: (200, s.mr(r).data), True),
        ("GET", _P + r"/repository/tree", _repository_tree, True),
        ("GET", _P + r"/repository/files/(?P<file>[^/]+)/raw", _raw_file, True),
        ("GET", _P + r"/repository/merge_base", _merge_base, True),
        ("GET", _P + r"/repository/compare", _compare, True),
        ("GET", _MR + r"/versions", _list_versions, False),
        ("GET", _MR + r"/versions/(?P<vid>[^/]+)", _get_version, False),
        ("GET", _MR + r"/diffs", _list_diffs, False),
        ("GET", _MR + r"/changes", _get_changes, False),
        ("GET", _MR + r"/raw_diffs", _raw_diffs, False),
        ("GET", _MR + r"/discussions", lambda s, r: (200, list(s.mr(r).discussions)), False),
        ("POST", _MR + r"/discussions", _create_discussion, False),
        ("GET", _THREAD, lambda s, r: (200, s.discussion(r)), False),
        ("PUT", _THREAD, _resolve_discussion, False),
        ("POST", _THREAD + r"/notes", _reply, False),
        ("GET", _THREAD + r"/notes/(?P<nid>[^/]+)", lambda s, r: (200, s.note(r)[1]), False),
        ("PUT", _THREAD + r"/notes/(?P<nid>[^/]+)", _update_note, False),
        ("GET", _MR + r"/notes", _list_notes, False),
        ("POST", _MR + r"/notes", _create_note, False),
        ("GET", _MR + r"/notes/(?P<nid>[^/]+)", lambda s, r: (200, s.note(r)[1]), False),
        ("PUT", _MR + r"/notes/(?P<nid>[^/]+)", _update_note, False),
        ("DELETE", _MR + r"/notes/(?P<nid>[^/]+)", _delete_note, False),
    ]
]
