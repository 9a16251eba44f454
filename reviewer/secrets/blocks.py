"""Pure: private key blocks, which span lines, in a sequence of lines.

The markers are PEM's (RFC 7468: ``-----BEGIN RSA PRIVATE KEY-----``, ``OPENSSH``, ``EC``,
``ENCRYPTED``, PGP's ``PRIVATE KEY BLOCK``), SSH2's four-dash form and PuTTY's key files: the
same families as detect-secrets' PrivateKeyDetector, which sees only the marker line. A block
also sits inside one line, as in a GCP service-account JSON (``"private_key": "-----BEGIN
PRIVATE KEY-----\\nMIIE...\\n-----END PRIVATE KEY-----\\n"``). The markers stay readable; the
key material between them is what is replaced.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

BEGIN = re.compile(r"-{4,5} ?BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)? ?-{4,5}|"
                   r"PuTTY-User-Key-File-\d+:")
END = re.compile(r"-{4,5} ?END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)? ?-{4,5}|Private-MAC: *\S+")
MATERIAL = re.compile(r"[A-Za-z0-9+/=]{4,}")  # base64 runs: a short run is an escape's letter
BODY_LINE = re.compile(r"^\W*[A-Za-z0-9+/]{16,}={0,2}\W*(n\W*)?$")  # a line of key material
GCP_JSON = re.compile(r'"private_key"\s*:\s*"$')


@dataclass
class Block:
    """A key block: lines first..last (indexes into the sequence); spans to replace per line."""

    first: int
    last: int
    kind: str = "private-key"
    spans: dict[int, list[tuple[int, int]]] = field(default_factory=dict)

    def add(self, index: int, text: str, start: int, end: int) -> None:
        """Line index belongs to the block; its key material in text[start:end] is replaced."""
        runs = list(MATERIAL.finditer(text, start, end))
        if runs:
            self.spans.setdefault(index, []).append((runs[0].start(), runs[-1].end()))
        self.last = index


def find(texts: Sequence[str]) -> list[Block]:
    """Every key block in texts (consecutive lines, as a file shows them), opened and closed
    by its markers; a block the lines cut short runs to their end, and key material before an
    END marker whose BEGIN is not shown counts as a block too."""
    blocks: list[Block] = []
    current: Block | None = None
    for index, text in enumerate(texts):
        pos = 0
        while pos <= len(text):
            if current is None:
                begin = BEGIN.search(text, pos)
                end = END.search(text, pos)
                if end and (not begin or end.start() < begin.start()):
                    blocks += _orphan(texts, index, end.start())
                    pos = end.end()
                    continue
                if not begin:
                    break
                kind = "gcp-service-account-key" if GCP_JSON.search(text[:begin.start()]) \
                    else "private-key"
                current, pos = Block(index, index, kind), begin.end()
                blocks.append(current)
            end = END.search(text, pos)
            current.add(index, text, pos, end.start() if end else len(text))
            if not end:
                break
            current, pos = None, end.end()
    return blocks


def _orphan(texts: Sequence[str], index: int, end: int) -> list[Block]:
    """The key material just above an END marker whose BEGIN lies outside the lines."""
    first = index
    while first > 0 and BODY_LINE.match(texts[first - 1]):
        first -= 1
    block = Block(first, first)
    for i in range(first, index):
        block.add(i, texts[i], 0, len(texts[i]))
    block.add(index, texts[index], 0, end)
    return [block] if block.spans else []
