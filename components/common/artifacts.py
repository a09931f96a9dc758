"""Writing artifacts so that a failure never leaves a partial one, and reading arrays safely."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from reprflow.components.common.errors import DataError


def staging_dir(final: Path) -> Path:
    """A new empty folder next to `final` (same filesystem, so it can be renamed onto it) with the
    umask's permissions: mkdtemp's 0700 would travel with the rename and lock other readers out."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}")
    staging.mkdir()
    return staging


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging directory that replaces `path` only if the block finishes without error."""
    final = Path(path)
    staging = staging_dir(final)
    try:
        yield staging
        _put_in_place(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _put_in_place(staging: Path, final: Path, attempts: int = 100) -> None:
    """Rename `staging` to `final`. Whatever is at `final` is renamed aside first and removed only once
    `staging` is in its place, so a process killed in between leaves the old content (as
    `.NAME.old-*`), never nothing. With concurrent writers of the same `final` the last rename wins;
    an attempt fails only when another writer's rename succeeded in between, so the loop ends once
    the others are done."""
    for _ in range(attempts):
        aside = None
        if final.exists() or final.is_symlink():
            aside = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
            try:
                os.rename(final, aside)
            except FileNotFoundError:
                aside = None  # another writer moved it first
        try:
            os.replace(staging, final)
        except OSError as exc:  # another writer's folder landed in between: move that one aside too
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                if aside is not None:
                    os.rename(aside, final)  # put the old content back before failing
                raise
            if aside is not None:
                _remove(aside)
            continue
        if aside is not None:
            _remove(aside)
        return
    raise OSError(errno.EBUSY, "other writers kept replacing it", str(final))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically (a temp file of its own + rename), keys in insertion order."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:  # the umask's permissions, unlike mkstemp's 0600
            f.write(json.dumps(obj, indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def stays_inside(rel: Any) -> bool:
    """`rel` is a non-empty relative POSIX path that cannot leave its folder (no '..', no '\\')."""
    if not (isinstance(rel, str) and rel and "\\" not in rel):
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and ".." not in p.parts


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's content; DataError naming the file if it is not valid UTF-8 JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """Load an array with pickles refused: stored artifacts never execute code. DataError naming the
    file for one that is truncated, not an .npy, or an object array (which would need a pickle)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read as an .npy array ({exc})") from None
    if not isinstance(array, np.ndarray):  # an .npz archive under an .npy name
        array.close()
        raise DataError(f"{path}: an .npz archive, not an .npy array")
    return array
