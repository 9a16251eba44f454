"""Outputs: review.json and the Code Quality report first, then the merge request's threads."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reviewer import identity, inline, state
from reviewer.diff import FileDiff
from reviewer.errors import PositionRejected, ReviewerError, UsageError
from reviewer.model import PlacedFinding, Review
from reviewer.render import MARKER, InlineReport, finding_note, summary_note

if TYPE_CHECKING:  # in annotations only: writing review.json needs no GitLab client
    from reviewer.gitlab import GitLab, MergeRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Posted:
    note_url: str
    report: InlineReport


def write_text(path: Path, text: str) -> None:
    """Write a file atomically, so a crash never leaves half of it.

    A path that names a device or a pipe (/dev/stdout, a FIFO) is written into as it is: a
    rename would replace the device with a regular file.
    """
    try:
        if _special(path):
            with path.open("w", encoding="utf-8") as out:
                out.write(text)
            return
        path = path.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        # mkstemp makes the file private; an artifact is as readable as any file the user writes.
        umask = os.umask(0)
        os.umask(umask)
        Path(tmp).chmod(0o666 & ~umask)
        Path(tmp).replace(path)
    except OSError as exc:
        raise ReviewerError(f"cannot write {path}: {exc.strerror}") from None


def _special(path: Path) -> bool:
    """True for an existing path that is neither a regular file nor a folder."""
    return path.exists() and not path.is_file() and not path.is_dir()


def check_writable(path: Path, flag: str) -> None:
    """Raise UsageError unless a file can be written at path (its folder made if need be).

    Called before the first model request, so an answer is never lost to a typo in a path.
    """
    if _special(path):
        if not os.access(path, os.W_OK):
            raise UsageError(f"{flag} {path} cannot be written (permission denied)")
        return
    target = path.resolve()
    if target.is_dir():
        raise UsageError(f"{flag} {path} is a directory: name a file, e.g. {path / 'x.json'}")
    blocker = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UsageError(f"{flag} {path} cannot be written: {blocker} is a file, not a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target.parent):
            pass
    except OSError as exc:
        raise UsageError(f"{flag} {path} cannot be written ({exc.strerror}): choose a path in "
                         "a writable folder") from None


def write_artifact(review: Review, path: Path) -> None:
    """Write review.json."""
    write_text(path, review.model_dump_json(indent=2) + "\n")


def codequality(review: Review, files: Mapping[str, FileDiff] | None = None
                ) -> list[dict[str, object]]:
    """Every finding about a file of the change, placed or not, as a GitLab Code Quality report
    entry (a file the change does not have would point the widget nowhere)."""
    entries: list[dict[str, object]] = []
    seen: set[str] = set()
    taken: set[str] = set()
    for f in review.findings:
        if not f.in_change:
            continue
        # The report speaks of the new file: a removed line is shown where it was removed.
        line = inline.new_file_line(f, (files or {}).get(f.path) if f.placed else None)
        entry: dict[str, object] = {
            "description": f"{f.title}: {f.message}" if f.message else f.title,
            "check_name": f.rule or "reviewer",
            "fingerprint": f.fingerprint,
            "severity": f.severity,
            # The model's line is not validated; the report's lines start at 1.
            "location": {"path": f.path, "lines": {"begin": max(1, line)}},
        }
        content = json.dumps(entry, sort_keys=True)
        if content in seen:  # the same finding reported twice
            continue
        seen.add(content)
        # GitLab keeps one entry per fingerprint, and a finding's fingerprint is shared by
        # the same finding told in other words (same line, same rule): tell them apart.
        fingerprint = f.fingerprint
        while fingerprint in taken:
            fingerprint = hashlib.sha256(f"{fingerprint}\0{content}".encode()).hexdigest()[:16]
        taken.add(fingerprint)
        entries.append(entry | {"fingerprint": fingerprint})
    return entries


def write_codequality(review: Review, path: Path, files: Mapping[str, FileDiff]) -> None:
    """Write the Code Quality report GitLab shows in the merge request widget."""
    write_text(path, json.dumps(codequality(review, files), indent=2) + "\n")


def post(client: GitLab, mr: MergeRequest, review: Review, files: Mapping[str, FileDiff],
         max_inline: int, inline_on: bool, artifact: str = "review.json",
         touched: frozenset[str] = frozenset()) -> Posted:
    """Post new findings inline, resolve gone ones, then create or edit the summary
    (artifact: where the summary says the full review.json is; touched: the anchors of
    earlier findings on lines the new commits changed, whose threads close as fixed).

    Only threads the token's user started are read; one a person resolved is never reopened
    or posted again, and no thread is ever edited: a gone finding's thread gets a reply."""
    notes = client.our_notes(mr.project_id, mr.iid)
    threads = [inline.Thread(n.discussion_id, mark, n.resolved, n.path) for n in notes
               if (mark := identity.read_marker(n.body))]
    unread = frozenset(n.path for n in review.coverage.not_reviewed)
    plan = inline.plan(review.findings, threads, max_inline, inline_on, files, unread)
    refs = inline.Refs(mr.base_sha, mr.start_sha, mr.head_sha)
    posted = {f.fingerprint for f, key in zip(plan.post, plan.keys, strict=True)
              if _post_inline(client, mr, f, key, files, refs)}
    for thread in plan.resolve:
        fixed = thread.mark.anchor is not None and thread.mark.anchor in touched
        said = "Fixed in" if fixed else "No longer reported at"
        client.reply_and_resolve(mr.project_id, mr.iid, thread.discussion_id,
                                 f"{said} {mr.head_sha[:12]}.")
    report = InlineReport(
        inline=plan.inline(posted | {f.fingerprint for f in plan.known}), new=len(posted),
        resolved=len(plan.resolve), rejected=len(plan.post) - len(posted))
    ours = [f for f in review.findings if f.in_change]
    anchors = [k.anchor for k in identity.keys(ours, files)]
    body = summary_note(review, report, artifact, state.block(review, anchors))
    summary = next((n for n in notes if n.body.startswith(MARKER)), None)
    if summary:
        client.update_note(mr.project_id, mr.iid, summary.note_id, body)
        note_id = summary.note_id
    else:
        note_id = client.create_discussion(mr.project_id, mr.iid, body).note_id
    return Posted(f"{mr.web_url}#note_{note_id}", report)


def _post_inline(client: GitLab, mr: MergeRequest, finding: PlacedFinding, key: identity.Key,
                 files: Mapping[str, FileDiff], refs: inline.Refs) -> bool:
    """Post one finding on its line; False when GitLab refuses every position we can give."""
    file = files[finding.path]
    body = finding_note(finding, inline.suggestion(finding, file), key)
    for multiline in (True, False):  # a refused line_range gets one try as a single line
        position = inline.position(finding, file, refs, multiline)
        if position is None:
            return False
        try:
            client.create_discussion(mr.project_id, mr.iid, body, position)
            return True
        except PositionRejected as exc:
            log.info("GitLab refused the position of %s:%s (%s)", finding.path, finding.line, exc)
            if "line_range" not in position:
                break
    return False
