"""Masking secrets in text that reaches the log, the retained stats and error events."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(\w[\w+.-]*://[^/@:\s]*):[^/@\s]*@")


def redact(text: str) -> str:
    """text with the password of any URL in it masked: rtsp://user:pw@cam -> rtsp://user:***@cam."""
    return _USERINFO.sub(r"\1:***@", text)
