"""The earlier review of a merge request, read back from its summary note, and what this run
asks the model about because of it (--incremental; the decision itself is rerun.py's)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reviewer import rerun, spec, state
from reviewer.diff import FileDiff
from reviewer.errors import GitLabError
from reviewer.render import MARKER

if TYPE_CHECKING:  # in annotations only
    from reviewer.gitlab import GitLab, MergeRequest

log = logging.getLogger(__name__)
NO_STATE = ("full review: the last review left nothing to build on (written by an older "
            "version, or too large to keep)")


def plan(client: GitLab, mr: MergeRequest, rules: spec.Spec, model: str,
         files: Sequence[FileDiff]) -> rerun.Split:
    """The files to send to the model and the findings carried over; a full review, with its
    reason (a warning), whenever the earlier review cannot be built on. Never raises: a full
    review is always a safe answer."""
    split = _plan(client, mr, rules, model, files)
    if split.rerun.reason:
        log.warning("%s", split.rerun.reason)
    log.info("%s review: %d file(s) to ask the model about, %d carried over", split.rerun.mode,
             len(split.review), len(split.carried))
    return split


def _plan(client: GitLab, mr: MergeRequest, rules: spec.Spec, model: str,
          files: Sequence[FileDiff]) -> rerun.Split:
    try:
        notes = client.our_notes(mr.project_id, mr.iid)
        summary = next((n for n in notes if n.body.startswith(MARKER)), None)
        earlier = state.read(summary.body) if summary else None
    except (GitLabError, state.StateError) as exc:
        return rerun.full(files, f"full review: the earlier review cannot be read ({exc})")
    if earlier is None:
        return rerun.full(files, NO_STATE if summary else None)
    try:
        since = client.since(mr.project_id, earlier.head_sha, mr.head_sha)
    except GitLabError as exc:
        return rerun.full(files, "full review: the commits since the last review could not "
                          f"be compared ({exc})")
    if since is None:  # first: a rebase also moves the base a spec folder is read at
        return rerun.full(files, rerun.not_in_history(earlier, mr.base_sha))
    why = rerun.start_over(earlier, model, [r.id for r in rules.rules], rules.commit)
    return rerun.full(files, why) if why else rerun.split(files, earlier, since)
