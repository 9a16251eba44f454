"""Outputs: review.json first, then the one summary discussion on the merge request."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from reviewer.errors import ReviewerError
from reviewer.gitlab import GitLab, MergeRequest
from reviewer.model import Review
from reviewer.render import MARKER, summary_note


def write_artifact(review: Review, path: Path) -> None:
    """Write review.json atomically, so a crash never leaves half a file."""
    path = path.resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".review-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(review.model_dump_json(indent=2) + "\n")
        Path(tmp).replace(path)
    except OSError as exc:
        raise ReviewerError(f"cannot write the review to {path}: {exc.strerror}") from None


def post_summary(client: GitLab, mr: MergeRequest, review: Review) -> str:
    """Create or edit the summary discussion; the URL of its note."""
    note_id, _created = client.upsert_note(mr.project_id, mr.iid, MARKER, summary_note(review))
    return f"{mr.web_url}#note_{note_id}"
