"""Masking secrets in text that reaches the log, the retained stats and error events."""

from __future__ import annotations

import re

_URL = re.compile(r"\b[A-Za-z][\w+.-]*://\S*")  # only URLs are touched, never a path
# USERINFO@ up to the last "@" before the path (cameras accept an "@" in passwords); not a
# replay spec's trailing @FPS
_USERINFO = re.compile(r"^([^:]+://)([^/\s?]*)@(?![\d.]+$)")
# ?password=… &token=… (many IP cameras take credentials in the query string)
_QUERY = re.compile(r"([?&;](?:[\w.-]*(?:pass|pwd|token|secret|key|auth|sig)[\w.-]*|user(?:name)?)=)[^&;#\s@]*",
                    re.IGNORECASE)


def _userinfo(m: re.Match) -> str:
    user, sep, _ = m.group(2).partition(":")
    # user:password -> user:***; a lone user part may be a token: all of it
    return f"{m.group(1)}{user}:***@" if sep else f"{m.group(1)}***@"


def _url(m: re.Match) -> str:
    return _QUERY.sub(r"\1***", _USERINFO.sub(_userinfo, m.group(0)))


def redact(text: str) -> str:
    """text with the credentials of any URL in it masked: rtsp://user:pw@cam -> rtsp://user:***@cam,
    http://TOKEN@cam -> http://***@cam, ?user=u&password=pw -> ?user=***&password=***."""
    return _URL.sub(_url, text)
