"""stepsound in the browser: the live dashboard of ``run --web`` and the history of ``serve``.

* :mod:`stepsound.web.state` -- :class:`LiveState`, the hand-over from a
  session's main thread (``publish``) to the server threads, and the queue of
  the runner's requests back (``take_controls``);
* :mod:`stepsound.web.live` -- the snapshot of a session and the dashboard's routes;
* :mod:`stepsound.web.history` -- the routes of ``stepsound serve``;
* :mod:`stepsound.web.server` -- the HTTP server and its security rules.

The audio path never sees any of this: only the session's main thread
publishes, and publishing never waits for a client.
"""
from stepsound.web.server import WebAddress, WebServer, parse_web_address
from stepsound.web.state import Control, LiveState

__all__ = ["Control", "LiveState", "WebAddress", "WebServer", "parse_web_address"]
