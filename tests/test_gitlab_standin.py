"""Tests of the GitLab stand-in, driven through the real python-gitlab client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gitlab
import pytest
import requests
from gitlab.v4.objects import ProjectMergeRequest

from tests.gitlab_standin import FakeGitLab, files_from_git, git_commit

TOKEN = "bot-secret-token"
JOB_TOKEN = "ci-job-secret"
BASE, START, HEAD = "a" * 40, "b" * 40, "c" * 40

# Two hunks of app.py. Hunk 1: old 1-4 -> new 1-4; hunk 2: old 20-22 -> new 20-23.
APP_DIFF = (
    "@@ -1,4 +1,4 @@\n"
    " import os\n"  # context 1/1
    "-x = 1\n"  # removed, old 2
    "+x = 2\n"  # added, new 2
    " y = 3\n"  # context 3/3
    " z = 4\n"  # context 4/4
    "@@ -20,3 +20,4 @@\n"
    " def f():\n"  # context 20/20
    "+    log()\n"  # added, new 21
    "     return 1\n"  # context 21/22
    " \n"  # context 22/23
)
NEW_DIFF = "@@ -0,0 +1,2 @@\n+hello\n+world\n"
FILES: list[dict[str, Any]] = [
    {"old_path": "app.py", "new_path": "app.py", "diff": APP_DIFF},
    {"old_path": "new.txt", "new_path": "new.txt", "diff": NEW_DIFF, "new_file": True},
]


@dataclass
class World:
    fake: FakeGitLab
    gl: gitlab.Gitlab
    project_id: int
    mr: ProjectMergeRequest


@pytest.fixture
def world() -> Iterator[World]:
    with FakeGitLab() as fake:
        fake.add_user("review-bot", token=TOKEN)
        project = fake.add_project("group/proj")
        fake.add_merge_request(project["id"], iid=7, title="Change x", files=FILES)
        gl = gitlab.Gitlab(fake.url, private_token=TOKEN)
        mr = gl.projects.get(project["id"], lazy=True).mergerequests.get(7)
        yield World(fake, gl, project["id"], mr)


def _position(**lines: Any) -> dict[str, Any]:
    position: dict[str, Any] = {
        "position_type": "text",
        "base_sha": BASE,
        "start_sha": START,
        "head_sha": HEAD,
        "old_path": "app.py",
        "new_path": "app.py",
    }
    position.update(lines)
    return position


def test_user_and_project_by_path(world: World) -> None:
    world.gl.auth()
    assert world.gl.user is not None
    assert world.gl.user.username == "review-bot"
    project = world.gl.projects.get("group/proj")
    assert project.id == world.project_id
    assert project.web_url == f"{world.fake.url}/group/proj"
    assert world.mr.web_url == f"{world.fake.url}/group/proj/-/merge_requests/7"
    assert world.mr.diff_refs == {"base_sha": BASE, "head_sha": HEAD, "start_sha": START}


def test_pagination_follows_links_with_iterator_and_get_all(world: World) -> None:
    for number in range(45):
        world.fake.add_discussion(world.project_id, 7, f"note {number}", "someone")
    world.fake.requests.clear()
    pages = world.mr.discussions.list(iterator=True, per_page=20)
    assert (pages.total, pages.total_pages, pages.next_page, pages.prev_page) == (45, 3, 2, None)
    bodies = [d.attributes["notes"][0]["body"] for d in pages]
    assert bodies == [f"note {n}" for n in range(45)]
    assert [r.query.get("page", "1") for r in world.fake.requests] == ["1", "2", "3"]
    assert len(world.mr.discussions.list(get_all=True)) == 45
    assert len(world.mr.notes.list(get_all=True, per_page=100)) == 45


def test_pagination_keeps_filters_and_sends_gitlab_headers(world: World) -> None:
    for iid in range(100, 125):
        state = "merged" if iid % 5 == 0 else "opened"
        world.fake.add_merge_request(world.project_id, iid=iid, title="t", files=[], state=state)
    project = world.gl.projects.get(world.project_id, lazy=True)
    opened = project.mergerequests.list(state="opened", per_page=10, get_all=True)
    assert len(opened) == 21  # 20 seeded as opened plus iid 7
    assert all(r.query["state"] == "opened" for r in world.fake.requests if "page" in r.query)
    url = f"{world.fake.url}/api/v4/projects/{world.project_id}/merge_requests"
    reply = requests.get(url, params={"page": 2, "per_page": 10}, headers={"PRIVATE-TOKEN": TOKEN})
    assert reply.headers["Content-Type"] == "application/json"
    assert (reply.headers["X-Page"], reply.headers["X-Total"]) == ("2", "26")
    assert (reply.headers["X-Next-Page"], reply.headers["X-Prev-Page"]) == ("3", "1")
    assert reply.links["next"]["url"] == f"{url}?page=3&per_page=10"
    assert set(reply.links) == {"prev", "next", "first", "last"}
    last = requests.get(reply.links["last"]["url"], headers={"PRIVATE-TOKEN": TOKEN})
    assert (last.headers["X-Next-Page"], len(last.json())) == ("", 6)
    assert "next" not in last.links


def test_missing_or_unknown_token_is_401(world: World) -> None:
    with pytest.raises(gitlab.GitlabAuthenticationError) as missing:
        gitlab.Gitlab(world.fake.url).projects.get(world.project_id)
    assert missing.value.response_code == 401
    with pytest.raises(gitlab.GitlabAuthenticationError):
        gitlab.Gitlab(world.fake.url, private_token="wrong").auth()
    assert {r.auth for r in world.fake.requests} >= {"none", "private"}
    assert all(TOKEN not in repr(r) and "wrong" not in repr(r) for r in world.fake.requests)


def test_bearer_token_authenticates(world: World) -> None:
    gl = gitlab.Gitlab(world.fake.url, oauth_token=TOKEN)
    gl.auth()
    assert gl.user is not None
    assert gl.user.username == "review-bot"


def test_job_token_reads_mr_but_not_discussions(world: World) -> None:
    world.fake.add_job_token(JOB_TOKEN)
    gl = gitlab.Gitlab(world.fake.url, job_token=JOB_TOKEN)
    mr = gl.projects.get(world.project_id).mergerequests.get(7)
    assert mr.title == "Change x"
    with pytest.raises(gitlab.GitlabListError) as listing:
        mr.discussions.list(get_all=True)
    assert listing.value.response_code == 403
    with pytest.raises(gitlab.GitlabCreateError) as posting:
        mr.discussions.create({"body": "hi"})
    assert posting.value.response_code == 403
    with pytest.raises(gitlab.GitlabListError) as changes:  # python-gitlab's class for it
        mr.changes()
    assert changes.value.response_code == 403
    assert world.fake.requests[-1].auth == "job"


@pytest.mark.parametrize(
    ("path", "lines"),
    [
        ("app.py", {"new_line": 2}),  # added
        ("app.py", {"old_line": 2}),  # removed
        ("app.py", {"old_line": 3, "new_line": 3}),  # context
        ("app.py", {"old_line": 21, "new_line": 22}),  # context in the second hunk
        ("new.txt", {"new_line": 1}),  # added line of a new file
    ],
)
def test_valid_positions_become_diff_notes(world: World, path: str, lines: Any) -> None:
    position = _position(old_path=path, new_path=path, **lines)
    discussion = world.mr.discussions.create({"body": "finding", "position": position})
    note = discussion.attributes["notes"][0]
    assert (note["type"], note["resolvable"], note["resolved"]) == ("DiffNote", True, False)
    assert {k: note["position"][k] for k in lines} == lines
    assert note["position"]["position_type"] == "text"
    assert len(discussion.id) == 40
    assert world.fake.discussions(world.project_id, 7)[0]["notes"][0]["type"] == "DiffNote"


@pytest.mark.parametrize(
    "change",
    [
        {"new_line": 3},  # context line addressed by new_line only
        {"old_line": 3},  # context line addressed by old_line only
        {"old_line": 10, "new_line": 10},  # between the hunks
        {"new_line": 99},  # past the end of the diff
        {"old_line": 2, "new_line": 2},  # a removed/added pair is not a context line
        {"old_line": 1, "new_line": 1, "old_path": "new.txt", "new_path": "new.txt"},
        {"new_line": 2, "new_path": "missing.py"},
        {"new_line": 2, "old_path": "renamed.py"},
        {"new_line": 2, "head_sha": "d" * 40},
        {"new_line": 2, "position_type": "image"},
        {"new_line": 2, "line_range": {"start": {"new_line": 1}, "end": {"new_line": 21}}},
    ],
)
def test_invalid_positions_are_400(world: World, change: dict[str, Any]) -> None:
    with pytest.raises(gitlab.GitlabCreateError) as error:
        world.mr.discussions.create({"body": "finding", "position": _position(**change)})
    assert error.value.response_code == 400
    assert "must be a valid line code" in str(error.value.error_message)
    assert world.fake.discussions(world.project_id, 7) == []


def test_line_range_within_one_hunk_and_form_bodies_are_accepted(world: World) -> None:
    line_range = {"start": {"old_line": 1, "new_line": 1}, "end": {"new_line": 2}}
    world.mr.discussions.create(
        {"body": "r", "position": _position(new_line=2, line_range=line_range)}
    )
    form = {"body": "via form", "position[position_type]": "text", "position[new_line]": "2"}
    form |= {f"position[{k}]": v for k, v in _position().items() if k != "position_type"}
    url = f"{world.fake.url}/api/v4/projects/group%2Fproj/merge_requests/7/discussions"
    reply = requests.post(url, data=form, headers={"PRIVATE-TOKEN": TOKEN})
    assert reply.status_code == 201
    assert reply.json()["notes"][0]["position"]["new_line"] == 2
    assert [d["notes"][0]["type"] for d in world.fake.discussions(world.project_id, 7)] == [
        "DiffNote",
        "DiffNote",
    ]


def test_plain_discussion_reply_and_resolve(world: World) -> None:
    discussion = world.mr.discussions.create({"body": "summary"})
    assert discussion.attributes["notes"][0]["type"] == "DiscussionNote"
    assert "position" not in discussion.attributes["notes"][0]
    reply = discussion.notes.create({"body": "follow-up"})
    assert reply.type == "DiscussionNote"
    discussion.resolved = True
    discussion.save()
    stored = world.fake.discussions(world.project_id, 7)[0]
    assert [n["resolved"] for n in stored["notes"]] == [True, True]
    assert stored["notes"][0]["resolved_by"]["username"] == "review-bot"


def test_note_update_in_place(world: World) -> None:
    created = world.mr.discussions.create({"body": "first", "position": _position(new_line=2)})
    note_id = created.attributes["notes"][0]["id"]
    before = world.fake.notes(world.project_id, 7)[0]
    note = world.mr.notes.get(note_id)
    note.body = "second"
    note.save()
    via_thread = world.mr.discussions.get(created.id).notes.get(note_id)
    via_thread.body = "third"
    via_thread.save()
    (after,) = world.fake.notes(world.project_id, 7)
    assert (after["id"], after["body"], after["type"]) == (note_id, "third", "DiffNote")
    assert after["created_at"] == before["created_at"]
    assert after["updated_at"] > before["updated_at"]
    assert [r.method for r in world.fake.requests].count("PUT") == 2
    assert "DELETE" not in {r.method for r in world.fake.requests}


def test_editing_someone_elses_note_is_403(world: World) -> None:
    seeded = world.fake.add_discussion(world.project_id, 7, "human remark", "alice")
    note = world.mr.notes.get(seeded["notes"][0]["id"])
    note.body = "hijacked"
    with pytest.raises(gitlab.GitlabUpdateError) as error:
        note.save()
    assert error.value.response_code == 403
    assert world.fake.notes(world.project_id, 7)[0]["body"] == "human remark"


def test_delete_is_recorded(world: World) -> None:
    created = world.mr.notes.create({"body": "oops"})
    world.mr.notes.delete(created.id)
    assert world.fake.requests[-1].method == "DELETE"
    assert world.fake.notes(world.project_id, 7) == []


def test_diffs_endpoint_and_changes_fallback(world: World) -> None:
    path = f"/projects/{world.project_id}/merge_requests/7/diffs"
    diffs = world.gl.http_list(path, get_all=True)
    assert isinstance(diffs, list)
    assert [d["new_path"] for d in diffs] == ["app.py", "new.txt"]
    assert diffs[1]["new_file"] is True
    assert (diffs[0]["a_mode"], diffs[0]["too_large"]) == ("100644", False)
    world.fake.diffs_endpoint = False
    with pytest.raises(gitlab.GitlabHttpError) as error:
        world.gl.http_list(path, get_all=True)
    assert error.value.response_code == 404
    changes = world.mr.changes()
    assert isinstance(changes, dict)
    assert [c["new_path"] for c in changes["changes"]] == ["app.py", "new.txt"]
    assert (changes["overflow"], changes["iid"]) == (False, 7)


def test_push_adds_a_version_and_moves_diff_refs(world: World) -> None:
    world.fake.push(world.project_id, 7, files=FILES[:1], head_sha="d" * 40)
    versions = world.mr.diffs.list(get_all=True)
    assert [v.head_commit_sha for v in versions] == ["d" * 40, HEAD]
    assert versions[0].state == "collected"
    newest = world.mr.diffs.get(versions[0].id)
    assert [d["new_path"] for d in newest.diffs] == ["app.py"]
    mr = world.gl.projects.get(world.project_id, lazy=True).mergerequests.get(7)
    assert (mr.sha, mr.diff_refs["head_sha"], mr.diff_refs["base_sha"]) == ("d" * 40,) * 2 + (BASE,)
    with pytest.raises(gitlab.GitlabCreateError):  # the old head is stale now
        mr.discussions.create({"body": "x", "position": _position(new_line=2)})
    position = _position(new_line=2, head_sha="d" * 40)
    assert mr.discussions.create({"body": "x", "position": position}).id


def test_unknown_things_are_404(world: World) -> None:
    with pytest.raises(gitlab.GitlabGetError) as project:
        world.gl.projects.get("no/such")
    assert project.value.error_message == "404 Project Not Found"
    with pytest.raises(gitlab.GitlabGetError) as mr:
        world.gl.projects.get(world.project_id, lazy=True).mergerequests.get(8)
    assert mr.value.error_message == "404 Not found"
    reply = requests.get(f"{world.fake.url}/api/v4/nowhere", headers={"PRIVATE-TOKEN": TOKEN})
    assert (reply.status_code, reply.json()) == (404, {"error": "404 Not Found"})


def _hunks(count: int) -> str:
    """A modified file's diff of many small hunks: about 54 bytes each."""
    return "".join(f"@@ -{10 * i + 1},3 +{10 * i + 1},3 @@\n a{i}\n-b{i} = 0\n+b{i} = 1\n c{i}\n"
                   for i in range(count))


@pytest.fixture
def limits(world: World) -> dict[str, str]:
    """An MR of one small, one collapsed (~25 KB), one flagged and one too_large (~220 KB) file."""
    files = {"small.py": _hunks(2), "many.py": _hunks(450), "flagged.py": _hunks(3),
             "huge.py": _hunks(4000)}
    world.fake.add_merge_request(world.project_id, iid=8, title="limits", files=[
        {"old_path": p, "new_path": p, "diff": d, "collapsed": p == "flagged.py"}
        for p, d in files.items()])
    return files


def _cut(items: list[dict[str, Any]]) -> dict[str, tuple[bool, bool, int]]:
    return {d["new_path"]: (d["collapsed"], d["too_large"], len(d["diff"])) for d in items}


def test_diffs_and_changes_cut_files_by_gitlabs_limits(world: World,
                                                       limits: dict[str, str]) -> None:
    mr = world.gl.projects.get(world.project_id, lazy=True).mergerequests.get(8)
    diffs = world.gl.http_list(f"/projects/{world.project_id}/merge_requests/8/diffs",
                               get_all=True)
    assert isinstance(diffs, list)
    expected = {"small.py": (False, False, len(limits["small.py"])), "many.py": (True, False, 0),
                "flagged.py": (True, False, 0), "huge.py": (False, True, 0)}
    assert _cut(diffs) == expected
    assert _cut(_changes(mr)) == expected
    assert _cut(mr.diffs.get(mr.diffs.list()[0].id).diffs) == expected
    # access_raw_diffs lifts the collapse limit only: Gitaly still cuts what is too large.
    assert _cut(_changes(mr, access_raw_diffs="true")) == {
        p: (False, p == "huge.py", 0 if p == "huge.py" else len(d)) for p, d in limits.items()}
    world.fake.max_patch_bytes = 1_000_000  # an admin raised diff_max_patch_bytes
    assert _cut(_changes(mr))["many.py"] == (False, False, len(limits["many.py"]))


def _changes(mr: ProjectMergeRequest, **query: str) -> list[dict[str, Any]]:
    answer = mr.changes(query_parameters=query)
    assert isinstance(answer, dict)
    return list(answer["changes"])


def test_raw_diffs_streams_the_whole_change_as_text(world: World,
                                                   limits: dict[str, str]) -> None:
    url = f"{world.fake.url}/api/v4/projects/{world.project_id}/merge_requests/8/raw_diffs"
    reply = requests.get(url, headers={"PRIVATE-TOKEN": TOKEN})
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert reply.headers["Transfer-Encoding"] == "chunked"  # Workhorse sends no length
    assert "Content-Length" not in reply.headers
    sections = reply.text.split("diff --git ")[1:]
    assert [s.split(" ", 1)[0] for s in sections] == [f"a/{p}" for p in limits]
    first = sections[0].splitlines(keepends=True)
    assert first[1].startswith("index ") and first[1].endswith(" 100644\n")
    assert first[2:4] == ["--- a/small.py\n", "+++ b/small.py\n"]
    assert "".join(first[4:]) == limits["small.py"]
    assert all(limits[p] in reply.text for p in limits)  # nothing is cut
    through_client = world.gl.http_get(url, streamed=True, raw=True)
    assert isinstance(through_client, requests.Response)
    assert b"".join(through_client.iter_content(4096)) == reply.content
    world.fake.raw_diffs_endpoint = False  # GitLab before 17.9
    with pytest.raises(gitlab.GitlabHttpError) as error:
        world.gl.http_get(url, raw=True)
    assert error.value.response_code == 404


def test_raw_diffs_serves_the_bytes_it_was_given(world: World) -> None:
    raw = b"diff --git a/l.txt b/l.txt\n--- a/l.txt\n+++ b/l.txt\n@@ -1 +1 @@\n-J\xfcrgen\n+J\n"
    world.fake.add_merge_request(world.project_id, iid=9, title="latin-1", raw_diff=raw,
                                 files=[{"new_path": "l.txt", "diff": "", "collapsed": True}])
    url = f"{world.fake.url}/api/v4/projects/{world.project_id}/merge_requests/9/raw_diffs"
    assert requests.get(url, headers={"PRIVATE-TOKEN": TOKEN}).content == raw
    world.fake.push(world.project_id, 9, files=[], head_sha="d" * 40)
    assert requests.get(url, headers={"PRIVATE-TOKEN": TOKEN}).content == b""


def test_missing_side_has_mode_zero(world: World) -> None:
    world.fake.add_merge_request(world.project_id, iid=10, title="modes", files=[
        {"new_path": "added.py", "new_file": True, "diff": "@@ -0,0 +1 @@\n+x\n"},
        {"new_path": "gone.py", "deleted_file": True, "diff": "@@ -1 +0,0 @@\n-x\n"},
        {"new_path": "run.sh", "b_mode": "100755", "diff": ""}])
    diffs = world.gl.http_list(f"/projects/{world.project_id}/merge_requests/10/diffs",
                               get_all=True)
    assert isinstance(diffs, list)
    assert [(d["a_mode"], d["b_mode"]) for d in diffs] == [
        ("0", "100644"), ("100644", "0"), ("100644", "100755")]


def test_collapsed_lines_take_notes_too_large_ones_do_not(world: World,
                                                         limits: dict[str, str]) -> None:
    mr = world.gl.projects.get(world.project_id, lazy=True).mergerequests.get(8)
    for path, line, ok in [("many.py", 2, True), ("flagged.py", 12, True), ("huge.py", 2, False)]:
        position = _position(old_path=path, new_path=path, new_line=line)
        if ok:
            assert mr.discussions.create({"body": "x", "position": position}).id
        else:
            with pytest.raises(gitlab.GitlabCreateError):
                mr.discussions.create({"body": "x", "position": position})


TRICKY = ["with space.py", 'quote"d.py', "tab\there.py", "back\\slash.py", "naïve-ü.py",
          "dir b/x.py", "--- x.py", "diff --git x.py", "new\nline.py"]


def test_rebuilt_raw_diff_is_what_git_prints(world: World, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = git_commit(repo, None, {**{n: f"1\n2\n{n}\n".encode() for n in TRICKY},
                                   "run.sh": b"x\n", "gone b.txt": b"x\n", "bin": b"\0\1",
                                   "old name.txt": b"a\nb\nc\nd\ne\n"})
    head = git_commit(repo, base, {**{n: f"1\n3\n{n}\n".encode() for n in TRICKY},
                                   "run.sh": ("100755", b"x\n"), "gone b.txt": None,
                                   "bin": b"\0\2", "old name.txt": None,
                                   "new dir/n\u00e4me.txt": b"a\nb\nc\nd\nE\n",
                                   "sub": ("160000", b"1" * 40), "link": ("120000", b"t"),
                                   "added file.txt": b"hi\n"})
    files, raw = files_from_git(repo, base, head)
    assert {f["new_path"] for f in files} >= set(TRICKY)  # GitLab's JSON: exact names
    world.fake.add_merge_request(world.project_id, iid=11, title="git", files=files)
    url = f"{world.fake.url}/api/v4/projects/{world.project_id}/merge_requests/11/raw_diffs"
    rebuilt = requests.get(url, headers={"PRIVATE-TOKEN": TOKEN}).content

    def shape(patch: bytes) -> list[bytes]:  # blob ids and similarity scores are made up
        return [ln for ln in patch.split(b"\n") if not ln.startswith((b"index ", b"similarity"))]

    assert shape(rebuilt) == shape(raw)
    assert b'"a/tab\\there.py"' in raw and b"--- a/with space.py\t\n" in raw


def test_merge_base_and_compare_answer_from_a_real_repository(
        world: World, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = git_commit(repo, None, {"a.py": b"1\n", "b.py": b"1\n"})
    first = git_commit(repo, base, {"a.py": b"2\n"})
    second = git_commit(repo, first, {"b.py": b"2\n"})
    forced = git_commit(repo, base, {"b.py": b"3\n"})  # a force-push: first is gone
    world.fake.add_repository(world.project_id, repo)
    remote = world.gl.projects.get(world.project_id, lazy=True)

    assert remote.repository_merge_base([first, second])["id"] == first
    assert remote.repository_merge_base([first, forced])["id"] == base
    with pytest.raises(gitlab.GitlabGetError) as unknown:
        remote.repository_merge_base([first, "f" * 40])
    assert unknown.value.response_code == 400
    assert "Could not find ref" in str(unknown.value.error_message)

    straight = remote.repository_compare(first, second, straight=True)
    assert [c["id"] for c in straight["commits"]] == [second]
    assert [d["new_path"] for d in straight["diffs"]] == ["b.py"]
    assert remote.repository_compare(first, forced)["commits"][0]["id"] == forced
