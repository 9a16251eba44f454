"""What a review learns about its model server that the next review against it can reuse.

One review asks the server its context window and finds out which structured-output mode it
accepts (a server that refuses json_schema is stepped down to json_object once). `reviewer
eval` runs many reviews against one server: sharing these facts spares each case the probes
and the refused first request, and keeps "valid JSON on the first try" about the model rather
than about the negotiation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from reviewer.context import Window

# json_schema_bare: the answer's schema without the bounds that keep a small model from
# rambling (maxLength, maxItems, minimum, maximum), for a grammar engine that refuses them.
MODES = ("json_schema", "json_schema_bare", "json_object", "plain")


@dataclass
class ServerFacts:
    """Shared by the reviews of one process against one endpoint; safe across threads."""

    mode_index: int = 0  # into MODES: the best mode not yet refused
    _window: Window | None = None
    _asked: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _probing: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def mode(self) -> str:
        return MODES[self.mode_index]

    def window(self, detect: Callable[[], Window | None]) -> Window | None:
        """The context window, detected by the first caller; the others wait for its answer
        rather than probe the server again (None: the server did not say, also remembered)."""
        with self._probing:
            if not self._asked:
                self._window, self._asked = detect(), True
            return self._window

    def step_down(self, refused: str, to: str) -> str | None:
        """The server refused `refused`: `to` (a later mode), for every later request of every
        review (once, however many requests in flight were refused it). Returns the new
        mode, or None when another request already stepped past `refused`."""
        with self._lock:
            if MODES[self.mode_index] != refused:
                return None
            self.mode_index = max(self.mode_index + 1, MODES.index(to))
            return MODES[self.mode_index]
