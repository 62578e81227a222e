"""A local web viewer over runs: `magicoder-data serve RUN [RUN...]`.

Read-only (every request opens its run read-only), bound to 127.0.0.1 unless asked otherwise,
and safe with untrusted text: models' and strangers' code is escaped, never run. Pages:
`/` (stages, funnel, spend, configs), `/samples` (filtered, paginated, full-text search),
`/samples/{id}` (seed, prompt, problem, solution, tests and their run, drops, contamination
evidence beside the benchmark item, LintSeq steps), `/drops`, `/contamination`; the same data
as JSON under `/api/`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

__all__ = ["serve"]

log = logging.getLogger("magicoder_data")


def serve(runs: Sequence[Path], host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve `runs` until Ctrl-C; any host but the loopback one is said to be open to others.

    The socket is bound before the app starts, so a port in use is one line, not a log."""
    import errno
    import socket

    import uvicorn

    from ..errors import ConfigError
    from .app import LOOPBACK, create_app

    if not 0 < port < 65536:
        raise ConfigError(f"--port {port} is not a port (1 to 65535)")
    # Bound to every address, the names it is reached by are unknown: it answers them all (and
    # says it is open to others); bound to one, it answers to that one and the loopback names.
    everywhere = host in ("0.0.0.0", "::", "")
    app = create_app(runs, ["*"] if everywhere else [host, *LOOPBACK])
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigError(f"--host {host} is no address ({reason})") from None
    listener = socket.socket(info[0], socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(info[4])
    except OSError as exc:
        listener.close()
        reason = exc.strerror or exc
        fix = "--host" if exc.errno == errno.EADDRNOTAVAIL else "--port"
        advice = "an address of this machine" if fix == "--host" else "another --port"
        raise ConfigError(f"cannot listen on {host}:{port} ({reason}); pick {advice}") from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this machine can read these runs", host)
    print(f"serving {len(runs)} run(s) at http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[listener])
