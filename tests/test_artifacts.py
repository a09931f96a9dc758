"""Artifact writes are whole or absent, also with several writers of the same path; no pickles."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from reprflow.components.common.artifacts import atomic_dir, load_npy, read_json, write_json
from reprflow.components.common.errors import DataError


def test_atomic_dir_replaces_a_folder_or_a_file_and_a_failure_keeps_the_old_one(tmp_path: Path) -> None:
    final = tmp_path / "out"
    final.write_text("a file")
    with atomic_dir(final) as staging:
        (staging / "a.txt").write_text("1")
    assert [p.name for p in final.iterdir()] == ["a.txt"]
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as staging:
            (staging / "b.txt").write_text("2")
            raise RuntimeError("stage failed")
    assert [p.name for p in final.iterdir()] == ["a.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left


def _hammer(work, threads: int = 4) -> list[BaseException]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # collected: a thread's exception would otherwise be lost
            errors.append(exc)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return errors


def test_concurrent_writers_of_one_folder_leave_one_whole_folder(tmp_path: Path) -> None:
    final = tmp_path / "fetched"

    def write_20_times() -> None:
        for _ in range(20):
            with atomic_dir(final) as staging:
                for i in range(20):
                    (staging / f"f{i}.txt").write_text("x" * 1000)

    assert _hammer(write_20_times) == []
    assert sorted(p.name for p in final.iterdir()) == sorted(f"f{i}.txt" for i in range(20))
    assert [p.name for p in tmp_path.iterdir()] == ["fetched"]


def test_concurrent_json_writers_leave_one_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"

    def write_200_times() -> None:
        for i in range(200):
            write_json(path, {"i": i, "pad": "x" * 5000})

    assert _hammer(write_200_times) == []
    assert json.loads(path.read_text())["i"] == 199
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_load_npy_refuses_pickled_objects(tmp_path: Path) -> None:
    # only the header of an object array: the refusal comes before any payload is read
    with open(tmp_path / "obj.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / 'obj.npy'))}: cannot be read as an \.npy "
                                        r"array \(.*allow_pickle=False"):
        load_npy(tmp_path / "obj.npy")


def test_damaged_json_and_npy_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"a": [1, 2')
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / 'a.json'))}: not valid JSON"):
        read_json(tmp_path / "a.json")
    np.save(tmp_path / "x.npy", np.arange(100.0))
    data = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "x.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / 'x.npy'))}: cannot be read as an \.npy"):
        load_npy(tmp_path / "x.npy")
    np.savez(tmp_path / "z.npz", a=np.arange(3))
    (tmp_path / "z.npz").rename(tmp_path / "z.npy")
    with pytest.raises(DataError, match=rf"^{re.escape(str(tmp_path / 'z.npy'))}: an \.npz archive, not an \.npy"):
        load_npy(tmp_path / "z.npy")


def test_atomic_dir_output_has_the_umask_permissions_not_mkdtemp_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "out") as staging:
            (staging / "a.txt").write_text("1")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755


def test_the_old_folder_is_removed_only_once_the_new_one_is_in_place(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    final = tmp_path / "out"
    with atomic_dir(final) as staging:
        (staging / "old.txt").write_text("old")
    seen: list[list[str]] = []
    real_replace = os.replace

    def replace(src, dst):  # what is at `final`'s folder while the new one is renamed in
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        if len(seen) == 1:
            raise OSError(errno.EXDEV, "simulated failure")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="simulated failure"):
        with atomic_dir(final) as staging:
            (staging / "new.txt").write_text("new")
    assert [p.name for p in final.iterdir()] == ["old.txt"]  # put back
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with atomic_dir(final) as staging:
        (staging / "new.txt").write_text("new")
    assert any(name.startswith(".out.old-") for name in seen[1])  # the old content was kept aside, not deleted
    assert [p.name for p in final.iterdir()] == ["new.txt"] and [p.name for p in tmp_path.iterdir()] == ["out"]
