"""Run a module with the network cut off: `python -m tests.no_network MODULE ARGS…`.

Any name lookup or connection to a host other than loopback prints one
`no_network: blocked …` line on stderr and fails as an offline machine would (OSError), so a
test can see that a converter build did not even try (tests/test_converter.py)."""

from __future__ import annotations

import ipaddress
import runpy
import socket
import sys
from typing import Any

MARK = "no_network: blocked"
_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect


def _local(host: Any) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).strip("[]")).is_loopback
    except ValueError:
        return False


def _getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
    if not _local(host):
        print(f"{MARK} name lookup of {host}", file=sys.stderr, flush=True)
        raise socket.gaierror(socket.EAI_NONAME, "blocked by tests.no_network")
    return _real_getaddrinfo(host, *args, **kw)


def _connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        print(f"{MARK} connection to {address[0]}", file=sys.stderr, flush=True)
        raise OSError(101, "Network is unreachable (blocked by tests.no_network)")
    return _real_connect(self, address)


def install() -> None:
    socket.getaddrinfo = _getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = _connect  # type: ignore[method-assign]


def main() -> None:
    install()
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
