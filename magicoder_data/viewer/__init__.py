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
    """Serve `runs` until Ctrl-C; any host but the loopback one is said to be open to others."""
    import uvicorn

    from .app import create_app

    app = create_app(runs)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this machine can read these runs", host)
    print(f"serving {len(runs)} run(s) at http://{host}:{port}/  (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
