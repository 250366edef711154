"""The daemon follows head changes made outside it.

`fingercount retrain` and `fingercount rollback` run in processes of their own and only
write the head files (edge/retrain.py); the daemon notices head.npz change within
HEAD_POLL_S and reloads, so a retrain over SSH needs no restart. A stat every 2 s costs
nothing on an SD card.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Optional

from edge.counting import Counter
from edge.errors import FingercountError
from edge.heads import head_identity

log = logging.getLogger(__name__)

HEAD_POLL_S = 2.0


class HeadWatch:
    """Reloads the daemon's classifier when its head.npz changes on disk.

    Head changes made inside the daemon hold `lock` and call note() afterwards, so they are
    not reloaded a second time; busy() (a retrain running here) defers the check."""

    def __init__(self, daemon: Any, reload: Callable[[Counter], Counter],
                 busy: Callable[[], bool] = lambda: False):
        self.daemon = daemon
        self._reload = reload
        self._busy = busy
        self.lock = threading.Lock()
        self._seen = self._now()
        self._thread = threading.Thread(target=self._loop, name="head-watch", daemon=True)

    def _now(self) -> tuple[str, Optional[tuple[int, int, int]]]:
        name = self.daemon.classifier.package.name
        return name, head_identity(self.daemon.cfg.state_dir, name)

    def start(self) -> HeadWatch:
        self._thread.start()
        return self

    def note(self) -> None:
        """The head was changed here (the caller holds lock)."""
        self._seen = self._now()

    def _loop(self) -> None:
        while not self.daemon.stop_event.wait(HEAD_POLL_S):
            if not self._busy():
                self.check()

    def check(self) -> bool:
        """Reload if head.npz changed since last seen; True if the classifier was swapped."""
        with self.lock:
            now = self._now()
            if now == self._seen:
                return False
            model_changed = now[0] != self._seen[0]
            self._seen = now
            clf = self.daemon.classifier
            if model_changed or not clf.package.retrainable:
                return False  # set_model loaded that model's head already
            try:
                new = self._reload(clf)
            except FingercountError as e:
                log.error("the head changed on disk but cannot be loaded: %s; counting goes on with "
                          "the one it has", e)
                self.daemon.publish_event("error", where="head", message=str(e))
                return False
            log.info("the head changed on disk (a retrain or rollback from the command line): now %s",
                     new.model_id)
            # the cause before its effect (model_swapped), as a subscriber reads them
            self.daemon.publish_event("head_reloaded", model=new.model_id, labels=list(new.labels))
            return bool(self.daemon.swap_classifier(new, replacing=clf))
