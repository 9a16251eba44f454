"""Which merge request a run reviews, from --mr-url, --project/--mr or the CI variables,
before anything is asked of GitLab."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from reviewer.config import Settings
from reviewer.errors import ConfigError, UsageError
from reviewer.gitlab_http import Origins

MR_URL = re.compile(r"^https?://[^/]+/.+?/-/merge_requests/(\d+)/?(?:[?#].*)?$")


@dataclass(frozen=True)
class Target:
    """Which merge request to review, before anything is asked of GitLab."""

    url: str
    project: str
    iid: int | None
    branch: str | None = None  # find the MR by its source branch (a pipeline run by hand)


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


def origins(settings: Settings, target: Target) -> Origins:
    """Where the token, project and iid of target came from, for GitLab's 401 and 404."""
    if settings.mr_url:
        return Origins(settings.origin("token"), "--mr-url", "--mr-url")
    mr = settings.origin("mr") if target.iid is not None else \
        f"the open merge request of branch {target.branch!r} (CI_COMMIT_REF_NAME)"
    return Origins(settings.origin("token"), settings.origin("project"), mr)
