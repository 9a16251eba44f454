"""Secrets never leave: likely secrets are replaced before any text is sent to the model.

detect.py finds them in a line (detect-secrets' rules and a few of ours), blocks.py finds
private key blocks across lines, redact.py applies both to a change and reports the secrets it
adds as findings. Import the API from here.
"""

from __future__ import annotations

from reviewer.secrets.redact import (
    PLACEHOLDER,
    Redaction,
    merge,
    redact_files,
    redact_text,
    secrets_rule,
)

__all__ = ["PLACEHOLDER", "Redaction", "merge", "redact_files", "redact_text", "secrets_rule"]
