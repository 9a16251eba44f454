"""GitLab over HTTP: python-gitlab with its own retries off, our policy on every request, and
GitLab's failures as one actionable line each.

python-gitlab retries by itself unless told not to (gitlab/client.py, ``http_request``): a 429
is slept on and retried up to ``max_retries=10`` times (``obey_rate_limit`` defaults to True),
and 5xx/timeouts too when ``retry_transient_errors`` is set; those are per-request arguments,
forced off here for every request. Under it, requests' HTTPAdapter retries nothing
(urllib3 ``Retry(0, read=False)``, requests' own default, made explicit).

GitLab's 429 comes from its rate limits (Rack::Attack and the application rate limiter) with
``Retry-After`` in seconds and ``RateLimit-Reset`` as a Unix time (GitLab docs, "Rate limits",
response headers); some limits send neither (gitlab-org/gitlab#199738), and then the policy's
backoff applies. python-gitlab's exceptions keep no headers, so a response hook turns a
429 or 5xx into Unavailable, which carries them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import gitlab
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from reviewer.errors import GitLabError
from reviewer.llm_errors import one_line, words_of
from reviewer.retry import RETRYABLE_STATUS, Policy, Transient, attempts, never, retry_after

# What the adapter is doing, for messages from the request level ("could not ...").
DOING: ContextVar[str] = ContextVar("doing", default="call GitLab")


@dataclass(frozen=True)
class Origins:
    """Where the token, the project and the merge request iid came from: a flag or a variable
    (Settings.origin), named in the message of a 401 or a 404."""

    token: str = "REVIEWER_GITLAB_TOKEN"  # noqa: S105 (a variable's name)
    project: str = "--project"
    mr: str = "--mr"


class Unavailable(Exception):
    """GitLab answered 429 or a 5xx; retry_after: the seconds it asked to wait, if it said."""

    def __init__(self, status: int, message: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message, self.retry_after = status, message, retry_after


def _wait_asked(headers: Any) -> float | None:
    asked = retry_after(headers)
    reset = str(headers.get("RateLimit-Reset") or "").strip()
    if asked is None and reset.isdigit():  # a Unix time (GitLab docs, rate limit headers)
        asked = max(0.0, int(reset) - time.time())
    return asked


def _said(response: requests.Response) -> str:
    """GitLab's own words: its JSON "message"/"error", or the text of an HTML error page."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        body = body.get("message") or body.get("error") or json.dumps(body)
    return one_line(words_of(body) or response.reason or "", 200)


def _raise_passing(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """A requests response hook: a 429 or 5xx becomes Unavailable, with GitLab's headers."""
    if response.status_code in RETRYABLE_STATUS:
        said = _said(response)  # reads the body, so the connection goes back to the pool
        raise Unavailable(response.status_code, said, _wait_asked(response.headers))


def session() -> requests.Session:
    """A session that retries nothing itself and raises Unavailable on a 429 or 5xx."""
    http = requests.Session()
    adapter = HTTPAdapter(max_retries=Retry(total=0, read=False))
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    http.hooks["response"].append(_raise_passing)
    return http


def transient(exc: Exception) -> Transient | None:
    """Whether a failed GitLab request may pass: a 429/5xx, a time-out, a connection lost."""
    if isinstance(exc, Unavailable):
        return Transient(f"HTTP {exc.status}", exc.retry_after)
    if isinstance(exc, requests.Timeout):
        return Transient("no answer in time")
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return Transient("connection failed or reset")
    return None


class Client(gitlab.Gitlab):
    """python-gitlab whose every request goes through policy, with its own retries off.

    GET, PUT and DELETE are retried (sending one twice does no more than sending it once);
    a POST is tried once here, and the adapter decides whether it may be sent again.
    timeout: seconds for one request, cut to what is left before the deadline.
    """

    def __init__(self, url: str, token: str | None, timeout: float, policy: Policy) -> None:
        super().__init__(url, private_token=token, timeout=timeout, session=session(),
                         per_page=100, retry_transient_errors=False)
        self.policy = policy

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any
                     ) -> requests.Response:
        kwargs |= {"obey_rate_limit": False, "retry_transient_errors": False, "max_retries": 0}
        limit = kwargs.get("timeout") or self.timeout
        parent = super().http_request

        def once() -> requests.Response:
            if limit:
                kwargs["timeout"] = self.policy.budget(limit)
            return parent(verb, path, *args, **kwargs)

        classify = never if verb.lower() == "post" else transient
        return self.policy.call(once, DOING.get(), classify)


@contextmanager
def errors(what: str, url: str, origins: Origins, not_found: str | None = None
           ) -> Iterator[None]:
    """GitLab's failures inside as one actionable line each (GitLabError).

    what completes "cannot ..."; not_found replaces the message of a 404.
    """
    doing = DOING.set(what)
    try:
        yield
    except gitlab.GitlabAuthenticationError:
        raise GitLabError(_unauthorized(what, origins.token)) from None
    except gitlab.GitlabError as exc:
        raise GitLabError(_refused(what, exc, origins.token, not_found)) from None
    except Unavailable as exc:
        tries = attempts(exc)
        times = f" {tries} times" if tries > 1 else ""
        raise GitLabError(f"cannot {what}: GitLab answered {exc.status}{times}: {exc.message}"
                          + ("; try again later, or raise --retries" if tries > 1 else "")) \
            from None
    except requests.RequestException as exc:
        raise GitLabError(f"cannot reach GitLab at {url} to {what}: "
                          f"{type(exc).__name__}") from None
    finally:
        DOING.reset(doing)


def no_project(ref: str, origins: Origins) -> str:
    """The message of a 404 on the project."""
    return (f"GitLab has no project {ref!r} that this token can see (404; the project came "
            f"from {origins.project}): check the id or path, and that the token's user is a "
            "member of a private project")


def no_mr(ref: str, iid: int, origins: Origins) -> str:
    """The message of a 404 on the merge request."""
    return (f"project {ref} has no merge request !{iid} (404; the iid came from {origins.mr}): "
            f"use the number in the merge request's URL (.../-/merge_requests/{iid}), not "
            "its global id")


def _unauthorized(what: str, origin: str) -> str:
    if origin == "default":
        return (f"GitLab asked for a token to {what} (401): set REVIEWER_GITLAB_TOKEN to a "
                "token with the api scope, or pass --token")
    return (f"GitLab rejected the token from {origin} while trying to {what} (401): it is "
            "invalid, expired or revoked, or for another GitLab; set a valid token with the "
            "api scope")


def _refused(what: str, exc: gitlab.GitlabError, origin: str, not_found: str | None) -> str:
    code = exc.response_code
    if code == 403:
        given = "no token was given" if origin == "default" else f"the token came from {origin}"
        return (f"the token may not {what} (403): it needs the api scope and at least the "
                f"Developer role on the project, and a CI_JOB_TOKEN cannot post or read diffs "
                f"({given})")
    if code == 404:
        return not_found or f"cannot {what}: not found (404), or the token cannot see it"
    return f"cannot {what}: GitLab answered {code}: {one_line(str(exc.error_message), 200)}"
