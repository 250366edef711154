"""The device's web page: live view, label-and-train, model download, digit canvas.

start_web(daemon, cfg) serves it on cfg.web.listen from a thread of its own (edge.web.server);
the HTML, CSS and JavaScript in static/ ship with the package (no build step, no CDN).
"""

from edge.web.server import WebServer, start_web

__all__ = ["WebServer", "start_web"]
