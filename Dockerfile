# The reviewer image: `reviewer` on PATH, git, and nothing else from the build.
#
#   docker build --build-arg VERSION=0.1.0 -t reviewer:0.1.0 .
#   docker run --rm -e REVIEWER_GITLAB_TOKEN reviewer:0.1.0 review --mr-url URL ...
#
# Build and run instructions, the measured size and the buildah/kaniko recipes: docs/image.md.

# A full patch tag rather than `3.12-slim`, so that a rebuild of the same commit gets the same
# Python; bump it on purpose (Renovate/Dependabot understand this form). Overridable so that
# the image can be built where Docker Hub is out of reach: scripts/build-image passes a Debian 12
# base made with debootstrap (its Python 3.11 is one the package supports).
ARG BASE_IMAGE=python:3.12.12-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build

# Required, and checked against the package below, so the image's version label cannot
# disagree with the `reviewer --version` it contains.
ARG VERSION

WORKDIR /src
# Only what the wheel is built from (hatchling: pyproject.toml, the readme it embeds, the
# package and the bundled rules it force-includes as reviewer/_spec).
COPY pyproject.toml README.md ./
COPY reviewer/ reviewer/
COPY spec/ spec/

# A throwaway venv: the base's own pip may be missing (Debian's python3) or refuse to run
# (PEP 668), and nothing of this stage reaches the final image anyway.
RUN if [ -z "${VERSION}" ]; then \
        echo "build with --build-arg VERSION=<__version__ in reviewer/__init__.py>" >&2; exit 1; \
    fi \
    && python3 -m venv /tmp/build-venv \
    && /tmp/build-venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
    && if [ ! -f "/dist/reviewer-${VERSION}-py3-none-any.whl" ]; then \
        echo "VERSION=${VERSION} does not match the wheel built: $(ls /dist)" >&2; exit 1; \
    fi

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

# GitPython shells out to git (`review --local`, cloning a spec repository). Not pinned to a
# Debian version: the mirror drops superseded versions when a security update lands, so a pin
# would break the build instead of picking up the fix; the base image tag pins the release.
# `apt-get clean` matters on bases without the docker-clean apt hook (debootstrap ones).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid: Kubernetes' runAsNonRoot can only verify a numeric USER, and volume
# permissions can be granted to it in advance. HOME and /workspace are the user's, nothing else.
#
# safe.directory: a CI checkout belongs to whoever cloned it (GitLab's helper runs as root), and
# git >= 2.35.2 refuses to read a repository owned by another user ("dubious ownership"). That
# guard protects a shared multi-user machine from another user's .git/config; this container
# has a single user and works on a checkout its job was handed, so it is switched off here.
RUN groupadd --gid 10001 reviewer \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/reviewer \
        --shell /bin/sh reviewer \
    && install -d -o 10001 -g 10001 /workspace \
    && git config --system --add safe.directory '*'

# The wheel's 60 KB stay in this COPY layer when each instruction is its own layer (buildah
# --layers=false squashes them away); a `RUN --mount` bind would avoid it, but not every
# daemonless builder supports that.
ARG VERSION
COPY --from=build /dist/reviewer-${VERSION}-py3-none-any.whl /tmp/

# The venv is root-owned: the reviewer process (which handles untrusted diffs and model output)
# cannot modify its own code. pip compiles the .pyc files here, at install time, so start-up
# stays fast although PYTHONDONTWRITEBYTECODE stops the (read-only) venv being written at run
# time. pip itself is removed afterwards: the image installs nothing at run time.
RUN python3 -m venv /opt/reviewer \
    && /opt/reviewer/bin/pip install --no-cache-dir "/tmp/reviewer-${VERSION}-py3-none-any.whl" \
    && /opt/reviewer/bin/python -m pip uninstall --yes --quiet pip setuptools \
    && rm "/tmp/reviewer-${VERSION}-py3-none-any.whl" \
    && /opt/reviewer/bin/reviewer --version

ENV PATH=/opt/reviewer/bin:$PATH \
    HOME=/home/reviewer \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Labels after the slow steps: changing SOURCE_URL rebuilds nothing above.
ARG SOURCE_URL=https://gitlab.example.com/tools/reviewer
LABEL org.opencontainers.image.title="reviewer" \
      org.opencontainers.image.description="Reviews GitLab merge requests with any OpenAI-compatible model and posts a scored JSON review." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT"

USER 10001:10001
WORKDIR /workspace

# `docker run IMAGE review ...` reads like the CLI. GitLab jobs set `entrypoint: [""]` and run
# their script with the image's /bin/sh, where `reviewer` is on PATH.
ENTRYPOINT ["reviewer"]
CMD ["--help"]
