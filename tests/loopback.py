"""The one way the stand-ins serve: a threaded HTTP server on 127.0.0.1, in a daemon thread."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


class Loopback:
    """Serve server from a daemon thread until stop(); a short poll keeps stop() fast."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server.server_close()
