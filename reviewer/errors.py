"""One exception tree; cli.py alone turns it into exit codes."""

from __future__ import annotations


class ReviewerError(Exception):
    """A failure the user can act on; the message says what to do."""


class UsageError(ReviewerError):
    """Flags or settings that contradict each other or cannot be used (exit 2)."""


class ConfigError(ReviewerError):
    """Something the run needs is not configured."""


class GitLabError(ReviewerError):
    """GitLab refused or failed a request."""


class PositionRejected(GitLabError):
    """GitLab refused an inline comment's position (its 400 "line_code can't be blank")."""


class GitError(ReviewerError):
    """A local git operation failed."""


class SpecError(ReviewerError):
    """The review rules could not be fetched or are invalid."""


class ModelError(ReviewerError):
    """The model server failed or its answer could not be used."""


class DeadlineExceeded(ReviewerError):
    """--deadline passed before the work it bounds could be done."""
