"""Output paths that never destroy what the tool did not write.

A folder output (an export, an audit report) is built in a fresh hidden staging folder beside
it and swapped in only when complete. It replaces an existing folder only when that folder is
empty or carries the marker file the tool writes into every folder it makes; any other folder
needs `overwrite`, and the current folder, the run, or a folder holding either is never
replaced. A file output is written to a fresh temporary file and renamed over the target; an
existing file is replaced only with `overwrite`, and never when it is one of the inputs.
Temporary files and folders are removed on every exit, and a killed run's leftovers are
removed the next time (they carry the marker).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from .errors import ConfigError

#: Written into every folder the tool makes; its presence lets a later run replace the folder.
MARKER = ".magicoder-data.json"


def _umasked(mode: int) -> int:
    """`mode` less the process umask: what a plain open() or mkdir() would have made."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_folder(
    out: Path, *, protect: Iterable[Path] = (), overwrite: bool = False, what: str = "--out"
) -> None:
    """Refuse (ConfigError) a folder output that would destroy something the tool did not make.

    `protect` lists the command's inputs (a run, files): the output may sit inside a protected
    folder but never replace one, nor a folder holding one.
    """
    target = out.resolve()
    cwd = Path.cwd().resolve()
    if _inside(cwd, target):
        raise ConfigError(f"{what} {out} is the current folder or holds it; choose a new folder")
    if target == Path.home().resolve() or target == Path(target.anchor):
        raise ConfigError(f"{what} {out} is a home or root folder; choose a new folder")
    for source in protect:
        if _inside(source.resolve(), target):
            raise ConfigError(
                f"{what} {out} is or holds {source}, an input of this command; choose a new folder"
            )
    if out.is_symlink():
        raise ConfigError(f"{what} {out} is a symbolic link; give the real folder or a new one")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{what} {out} exists and is not a folder")
    if not out.is_dir():
        return
    if any(out.rglob("run.db")):
        raise ConfigError(f"{what} {out} holds a run; choose a new folder")
    if overwrite:
        return
    written = _written(out)
    if written is None:
        if any(out.iterdir()):
            raise ConfigError(
                f"{what} {out} is not empty and was not written by magicoder-data; choose a new "
                "folder, or pass --overwrite to replace it"
            )
        return
    extra = next((p for p in _files(out) if p not in written), None)
    if extra is not None:
        raise ConfigError(
            f"{what} {out} holds {extra}, which magicoder-data did not write; move it, or pass "
            "--overwrite to replace the folder"
        )


def _files(folder: Path) -> list[str]:
    """Every file under `folder` but the marker, as relative POSIX paths."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if not p.is_dir() and p.name != MARKER
    )


def _written(folder: Path) -> set[str] | None:
    """The files the tool wrote into `folder` (from its marker), or None when it has none."""
    try:
        stamp = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        return set(stamp["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _mark(folder: Path, kind: str, *, staging: bool = False) -> None:
    """Write the marker: what the folder is and which files the tool wrote into it; a staging
    folder's names the process filling it instead, so a stale one can be told from a live one."""
    stamp: dict[str, object] = {
        "written_by": "magicoder-data",
        "kind": kind,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    stamp.update({"pid": os.getpid()} if staging else {"files": _files(folder)})
    (folder / MARKER).write_text(json.dumps(stamp) + "\n", encoding="utf-8")


def _remove_stale(out: Path) -> None:
    """Remove staging folders for `out` that a killed run of ours left: exactly mkdtemp's names,
    marked as staging by a process that no longer exists."""
    shape = re.compile(rf"\.{re.escape(out.name)}\.[a-z0-9_]{{8}}\.(partial|old)")
    for candidate in out.parent.iterdir() if out.parent.is_dir() else []:
        if not shape.fullmatch(candidate.name) or candidate.is_symlink():
            continue
        try:
            pid = json.loads((candidate / MARKER).read_text(encoding="utf-8"))["pid"]
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(candidate, ignore_errors=True)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not ours, or its process still runs


@contextmanager
def replacing_folder(
    out: Path,
    *,
    kind: str,
    protect: Iterable[Path] = (),
    overwrite: bool = False,
    what: str = "--out",
) -> Iterator[Path]:
    """Yield an empty staging folder; when the block succeeds it becomes `out`.

    Checked before any work and again just before the swap (something may have appeared).
    """
    protect = list(protect)
    check_folder(out, protect=protect, overwrite=overwrite, what=what)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        staging.chmod(_umasked(0o777))  # mkdtemp makes it private
        _mark(staging, kind, staging=True)
        yield staging
        _mark(staging, kind)
        check_folder(out, protect=protect, overwrite=overwrite, what=what)
        if not out.exists():
            staging.replace(out)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        _mark(old, kind, staging=True)
        out.replace(old / "replaced")
        try:
            staging.replace(out)
        except BaseException:
            (old / "replaced").replace(out)  # put the old output back
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_file(
    out: Path, *, inputs: Iterable[Path] = (), overwrite: bool = False, what: str = "--out"
) -> None:
    """Refuse (ConfigError) a file output that is an input, a folder, or someone's file."""
    for source in inputs:  # samefile sees through symlinks and hard links
        if source.exists() and out.exists() and os.path.samefile(source, out):
            raise ConfigError(f"{what} {out} is also an input; write to another file")
    if out.is_dir():
        raise ConfigError(f"{what} {out} is a folder; give a file name")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise ConfigError(f"{what} {out} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise ConfigError(f"{what} {out}: folder {out.parent} does not exist")


@contextmanager
def replacing_file(
    out: Path, *, inputs: Iterable[Path] = (), overwrite: bool = False, what: str = "--out"
) -> Iterator[TextIO]:
    """Yield a text handle on a temporary file that replaces `out` when the block succeeds."""
    check_file(out, inputs=inputs, overwrite=overwrite, what=what)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        os.fchmod(fd, _umasked(0o666))  # mkstemp makes it private
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
        if overwrite:
            os.replace(name, out)
        else:  # a file that appeared meanwhile is not ours to replace: link fails on it
            try:
                os.link(name, out)
            except FileExistsError:
                raise ConfigError(f"{what} {out} appeared meanwhile; pass --overwrite") from None
    finally:
        if os.path.exists(name):
            os.unlink(name)


def json_line(value: Any) -> str:
    """One JSON line, in UTF-8 where it can be: a lone surrogate (`\\ud83d`, valid in JSON, not
    in UTF-8) stays escaped as it came, instead of failing the whole output."""
    line = json.dumps(value, ensure_ascii=False, default=str)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(value, default=str)
    return line + "\n"
