"""Bounded, ordered outbox for QoS 1 messages (count, events, command results).

A message stays here until the broker acknowledged it (PUBACK). While disconnected nothing
leaves; when full the oldest message is dropped and counted. After a reconnect everything
not yet acknowledged is sent again from the head, so order holds (QoS 1 may duplicate; it
never reorders).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Optional


@dataclass(eq=False)
class Message:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    acked: bool = field(default=False, compare=False)


class Outbox:
    def __init__(self, maxlen: int = 1000):
        self.maxlen = int(maxlen)
        self._q: deque[Message] = deque()
        self._sent = 0  # the first _sent messages were handed to the current connection
        self._lock = threading.Lock()
        self.dropped = 0
        self.delivered = 0
        self.wakeup = threading.Event()

    def put(self, msg: Message) -> None:
        with self._lock:
            if len(self._q) >= self.maxlen:
                self._q.popleft()
                self.dropped += 1
                if self._sent:
                    self._sent -= 1
            self._q.append(msg)
        self.wakeup.set()

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for m in self._q if not m.acked)

    @property
    def in_flight(self) -> int:
        return self._sent

    def next_unsent(self) -> Optional[Message]:
        with self._lock:
            return self._q[self._sent] if self._sent < len(self._q) else None

    def mark_sent(self, msg: Message) -> None:
        with self._lock:
            if self._sent < len(self._q) and self._q[self._sent] is msg:
                self._sent += 1

    def ack(self, msg: Message) -> None:
        with self._lock:
            if msg.acked:
                return
            msg.acked = True
            self.delivered += 1
            while self._q and self._q[0].acked and self._sent:
                self._q.popleft()
                self._sent -= 1

    def rewind(self) -> None:
        """A new connection: resend everything not acknowledged, from the oldest."""
        with self._lock:
            self._q = deque(m for m in self._q if not m.acked)
            self._sent = 0
        self.wakeup.set()
