"""Writing artifacts so that a failure never leaves a partial one, and reading arrays safely."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from reprflow.components.common.errors import DataError


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging directory that replaces `path` only if the block finishes without error."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield staging
        _put_in_place(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _put_in_place(staging: Path, final: Path, attempts: int = 100) -> None:
    """Rename `staging` to `final`. Whatever is at `final` is first renamed aside and then removed;
    with concurrent writers of the same `final` the last rename wins. An attempt fails only when
    another writer's rename succeeded in between, so the loop ends once the others are done."""
    for _ in range(attempts):
        if final.exists() or final.is_symlink():
            aside = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
            try:
                os.rename(final, aside)
            except FileNotFoundError:
                pass  # another writer moved it first
            else:
                shutil.rmtree(aside) if aside.is_dir() and not aside.is_symlink() else aside.unlink()
        try:
            os.replace(staging, final)
            return
        except OSError as exc:  # another writer's folder landed in between: move that one aside too
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
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
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read as an .npy array ({exc})") from None
