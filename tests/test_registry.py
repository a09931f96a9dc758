"""Registry: versions whole or absent, verified fetches, and a compare-and-swap pointer.

Both backends run the same tests: a gs:// root on the emulator behind the fault proxy (which
enforces generation preconditions, as GCS does) and a local directory. Two real processes race
the local pointer.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from pathlib import Path

import pytest

from reprflow.components.common.errors import ReprflowError
from reprflow.components.common.gcs import GCS, ChecksumMismatch, RetryPolicy, StorageError
from reprflow.components.common.registry import (
    MANIFEST,
    Pointer,
    PointerMoved,
    Registry,
    VersionNotFound,
)

FAST = RetryPolicy(initial_s=0.01, maximum_s=0.05, deadline_s=5.0)
PROVENANCE = {"code_version": "abc123", "image": "reprflow:test", "seeds": [0, 1], "config_hash": "f00d",
              "inputs": {"gs://data/retail.csv": 1712345678901234}}


def make_dir(path: Path, salt: str = "") -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "input.npy").write_bytes(os.urandom(3000) + salt.encode())
    (path / "meta.json").write_text('{"dim": 8}' + salt)
    (path / "sub" / "table.parquet").write_bytes(b"PAR1" + os.urandom(500))
    return path


@pytest.fixture(params=["gcs", "local"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    if request.param == "local":
        return Registry(tmp_path / "registry")
    gcs = request.getfixturevalue("gcs")
    return Registry(gcs.uri("registry"), GCS(gcs.client(), retry=FAST))


def tamper(registry: Registry, uri: str, data: bytes) -> None:
    """Replace a stored file behind the registry's back (a valid object with other bytes)."""
    if uri.startswith("gs://"):
        registry._backend.gcs.upload_bytes(data, uri)
    else:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        Path(uri).write_bytes(data)


def test_publish_list_fetch_round_trip(registry: Registry, tmp_path: Path) -> None:
    src = make_dir(tmp_path / "model")
    v = registry.publish("representation", src, PROVENANCE)
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{10}", v.version_id)
    assert v.uri == f"{registry.root}/representation/versions/{v.version_id}"
    assert [f.path for f in v.files] == ["input.npy", "meta.json", "sub/table.parquet"]
    assert registry.list_versions("representation") == [v.version_id]
    assert registry.resolve(v.uri) == v and registry.get_version("representation", v.version_id).provenance == PROVENANCE

    out = registry.fetch("representation", v.version_id, tmp_path / "fetched")
    for f in v.files:
        assert (out / f.path).read_bytes() == (src / f.path).read_bytes()
    assert (out / MANIFEST).is_file()

    again = registry.publish("representation", src, PROVENANCE)  # same bytes: a new version, same hash
    assert again.version_id != v.version_id and again.version_id[-10:] == v.version_id[-10:]
    assert registry.list_versions("representation") == [v.version_id, again.version_id]


def test_fetch_refuses_a_tampered_file_and_leaves_nothing(registry: Registry, tmp_path: Path) -> None:
    v = registry.publish("representation", make_dir(tmp_path / "model"), PROVENANCE)
    tamper(registry, f"{v.uri}/meta.json", b'{"dim": 9}')
    with pytest.raises(ChecksumMismatch, match=re.escape(f"{v.uri}/meta.json: content (crc32c ")
                       + r".* does not match the manifest .*version .* refused"):
        registry.fetch("representation", v.version_id, tmp_path / "fetched")
    assert not (tmp_path / "fetched").exists()


def test_a_version_without_manifest_does_not_exist(registry: Registry, tmp_path: Path) -> None:
    v = registry.publish("representation", make_dir(tmp_path / "model"), PROVENANCE)
    ghost = "20200101T000000.000000Z-0123456789"
    tamper(registry, f"{registry.version_uri('representation', ghost)}/input.npy", b"half a publish")
    assert registry.list_versions("representation") == [v.version_id]
    with pytest.raises(VersionNotFound, match=f"versions/{ghost}: not a published version"):
        registry.fetch("representation", ghost, tmp_path / "fetched")
    with pytest.raises(VersionNotFound):
        registry.move_pointer("representation", ghost, registry.read_pointer("representation"))
    assert registry.read_pointer("representation") == Pointer(None, 0)


def test_a_run_finds_its_own_version_when_another_publisher_came_after(registry: Registry, tmp_path: Path) -> None:
    from reprflow.components.common.errors import ReprflowError
    from reprflow.pipelines.cli import published_version

    mine = registry.publish("representation", make_dir(tmp_path / "mine", "a"), PROVENANCE)
    theirs = registry.publish("representation", make_dir(tmp_path / "theirs", "b"), PROVENANCE)
    assert registry.list_versions("representation")[-1] == theirs.version_id
    assert published_version(registry, "representation", tmp_path / "mine") == mine.version_id
    with pytest.raises(ReprflowError, match="no version of representation holds the bundle at"):
        published_version(registry, "representation", make_dir(tmp_path / "never", "c"))


def test_pointer_compare_and_swap_between_two_writers(registry: Registry, tmp_path: Path) -> None:
    mine = registry.publish("representation", make_dir(tmp_path / "a", "a"), PROVENANCE)
    theirs = registry.publish("representation", make_dir(tmp_path / "b", "b"), PROVENANCE)
    assert registry.read_pointer("representation") == Pointer(None, 0)
    with pytest.raises(VersionNotFound, match="no current version"):
        registry.fetch("representation", "current", tmp_path / "none")

    seen_by_them = registry.read_pointer("representation")
    seen_by_me = registry.read_pointer("representation")
    moved = registry.move_pointer("representation", mine.version_id, seen_by_me)
    assert moved.version == mine.version_id and moved.generation > 0

    pointer = re.escape(registry.pointer_uri("representation"))
    with pytest.raises(PointerMoved, match=(
            rf"^{pointer} moved since it was read \(expected generation 0, found {moved.generation} pointing at "
            rf"{mine.version_id}\): nothing was changed; your version {theirs.version_id} stays published at "
            rf"{re.escape(theirs.uri)}; re-read the pointer and decide again$")):
        registry.move_pointer("representation", theirs.version_id, seen_by_them)
    assert registry.read_pointer("representation") == moved
    out = registry.fetch("representation", theirs.version_id, tmp_path / "theirs")  # the loser lost nothing
    assert (out / "meta.json").read_text().endswith("b")
    assert (registry.fetch("representation", "current", tmp_path / "cur") / "meta.json").read_text().endswith("a")

    again = registry.move_pointer("representation", theirs.version_id, registry.read_pointer("representation"))
    assert again.generation != moved.generation
    doc = registry._backend.read_json(f"representation/{'CURRENT.json'}")[0]
    assert (doc["version"], doc["previous"], doc["uri"]) == (theirs.version_id, mine.version_id, theirs.uri)


@pytest.mark.parametrize("fault", ["third file fails for good", "manifest fails for good", "transient",
                                   "manifest reply lost"])
def test_publish_under_faults_is_complete_or_absent(gcs, tmp_path: Path, fault: str) -> None:
    g = GCS(gcs.client(), retry=RetryPolicy(initial_s=0.01, maximum_s=0.05, deadline_s=0.5))
    registry = Registry(gcs.uri("registry"), g)
    src = make_dir(tmp_path / "model")  # three files, then MANIFEST.json: four multipart POSTs
    if fault == "third file fails for good":
        gcs.proxy.fail("POST", "uploadType=multipart", skip=2, times=10**6)
    elif fault == "manifest fails for good":
        gcs.proxy.fail("POST", "uploadType=multipart", skip=3, times=10**6)
    elif fault == "transient":
        gcs.proxy.fail("POST", "uploadType=multipart", times=2, status=503)
        gcs.proxy.fail("POST", "uploadType=multipart", skip=1, times=2, status=429)
        gcs.proxy.cut_request("POST", "uploadType=multipart", skip=3)
    else:
        gcs.proxy.cut_response("POST", "uploadType=multipart", skip=3)

    direct = GCS(gcs.client(direct=True), retry=FAST)
    if fault.endswith("for good"):
        with pytest.raises(StorageError, match=rf"^{re.escape(gcs.uri('registry/representation/versions/'))}"
                                               r"\S+: upload failed after retrying"):
            registry.publish("representation", src, PROVENANCE)
        assert registry.list_versions("representation") == []
        assert direct.list(gcs.uri("registry/")) == []  # no orphan under the version prefix
        deleted = [r for r in gcs.proxy.requests("DELETE") if r.status and r.status < 300]
        assert len(deleted) == (2 if fault.startswith("third") else 3)  # what had landed was removed
    else:
        v = registry.publish("representation", src, PROVENANCE)
        assert registry.list_versions("representation") == [v.version_id]
        names = sorted(i.uri.rsplit("/versions/", 1)[1] for i in direct.list(gcs.uri("registry/")))
        assert names == sorted(f"{v.version_id}/{p}" for p in ("input.npy", "meta.json", "sub/table.parquet",
                                                                 MANIFEST))
        out = registry.fetch("representation", v.version_id, tmp_path / "fetched")
        assert (out / "input.npy").read_bytes() == (src / "input.npy").read_bytes()
        assert any(r.fault for r in gcs.proxy.requests("POST"))


def test_resolve_and_names_are_checked(registry: Registry, tmp_path: Path) -> None:
    v = registry.publish("representation", make_dir(tmp_path / "model"), PROVENANCE)
    assert registry.resolve(v.uri + "/" + MANIFEST).version_id == v.version_id
    with pytest.raises(VersionNotFound, match="not under this registry's root"):
        registry.resolve("gs://elsewhere/representation/versions/" + v.version_id)
    with pytest.raises(VersionNotFound, match="not a version URI"):
        registry.resolve(f"{registry.root}/representation/{v.version_id}")
    with pytest.raises(Exception, match="artifact name '../x'"):
        registry.publish("../x", tmp_path / "model", PROVENANCE)
    with pytest.raises(Exception, match="artifact name 'x\\\\n'"):
        registry.publish("x\n", tmp_path / "model", PROVENANCE)
    with pytest.raises(VersionNotFound, match="not a version id"):
        registry.get_version("representation", v.version_id + "\n")


def test_a_file_that_fetch_would_refuse_is_not_published(registry: Registry, tmp_path: Path) -> None:
    src = make_dir(tmp_path / "model")
    (src / "a\\b.txt").write_text("x")
    with pytest.raises(Exception, match=r"a\\b.txt: a file name with a backslash cannot be published"):
        registry.publish("representation", src, PROVENANCE)
    assert registry.list_versions("representation") == []


def test_a_staging_folder_is_not_a_version(tmp_path: Path) -> None:
    """A publisher killed between writing the staged manifest and the rename leaves its staging folder."""
    registry = Registry(tmp_path / "registry")
    v = registry.publish("representation", make_dir(tmp_path / "model"), PROVENANCE)
    versions = Path(registry.root) / "representation" / "versions"
    staged = versions / f".{v.version_id}.abc123"
    staged.mkdir()
    (staged / MANIFEST).write_text("{}")
    assert registry.list_versions("representation") == [v.version_id]


def test_damaged_local_json_is_a_named_storage_error(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    v = registry.publish("representation", make_dir(tmp_path / "model"), PROVENANCE)
    pointer = Path(registry.pointer_uri("representation"))
    pointer.write_text("[1]")
    with pytest.raises(StorageError, match=f"{pointer}: not a pointer"):
        registry.read_pointer("representation")
    manifest = Path(v.uri) / MANIFEST
    manifest.write_text("{not json")
    with pytest.raises(StorageError, match=f"{manifest}: not valid JSON"):
        registry.get_version("representation", v.version_id)


ROUNDS = 30


def _race(root: str, who: int, barrier, results) -> None:  # runs in a spawned process
    registry = Registry(root)
    version = registry.list_versions("representation")[who]
    for round_ in range(ROUNDS):
        try:
            barrier.wait(timeout=30)
            seen = registry.read_pointer("representation")
            barrier.wait(timeout=30)  # both have read the same pointer before either moves it
            registry.move_pointer("representation", version, seen)
            results.put((round_, who, "won"))
        except PointerMoved:
            results.put((round_, who, "lost"))
        except Exception as exc:  # report, so the parent fails at once and says why
            results.put((round_, who, f"error {exc!r}"))
            barrier.abort()
            return


def test_two_processes_racing_the_local_pointer_one_wins_each_round(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    for who in "ab":
        registry.publish("representation", make_dir(tmp_path / who, who), PROVENANCE)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(registry.root), who, barrier, results), daemon=True)
             for who in (0, 1)]
    try:
        for p in procs:
            p.start()
        outcomes = []
        while len(outcomes) < 2 * ROUNDS and not any("error" in o[2] for o in outcomes):
            outcomes.append(results.get(timeout=60))
        assert not [o for o in outcomes if "error" in o[2]]
        for p in procs:
            p.join(timeout=30)
            assert p.exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
    winners = {r: sorted(w for (r2, w, o) in outcomes if r2 == r and o == "won") for r in range(ROUNDS)}
    assert all(len(w) == 1 for w in winners.values()), winners  # exactly one winner per round
    assert registry.read_pointer("representation").generation == ROUNDS


def test_publish_follows_symlinked_folders_and_refuses_a_loop(registry: Registry, tmp_path: Path) -> None:
    real = make_dir(tmp_path / "real")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text("{}")
    (bundle / "embeddings").symlink_to(real, target_is_directory=True)
    v = registry.publish("shop", bundle, PROVENANCE)
    assert [f.path for f in v.files] == ["bundle.json", "embeddings/input.npy", "embeddings/meta.json",
                                         "embeddings/sub/table.parquet"]
    (real / "sub" / "back").symlink_to(bundle, target_is_directory=True)
    with pytest.raises(ReprflowError, match="a symlink to a folder that holds it"):
        registry.publish("shop", bundle, PROVENANCE)


def test_publish_with_reuse_returns_the_version_that_holds_the_same_files(registry: Registry, tmp_path: Path) -> None:
    d = make_dir(tmp_path / "d")
    first = registry.publish("shop", d, PROVENANCE)
    assert registry.publish("shop", d, PROVENANCE, reuse=True).version_id == first.version_id
    second = registry.publish("shop", d, PROVENANCE)  # without reuse: a new version of the same content
    assert registry.list_versions("shop") == sorted([first.version_id, second.version_id])
    (d / "meta.json").write_text('{"dim": 9}')
    assert registry.publish("shop", d, PROVENANCE, reuse=True).version_id not in (first.version_id, second.version_id)


@pytest.mark.parametrize("root", ["gs://", "gs:/bucket/registry", "gs//bucket/registry", "GS://bucket/registry"])
def test_a_mistyped_gcs_root_is_refused_not_taken_as_a_local_folder(root: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from reprflow.components.common.config import validate_config
    from reprflow.components.common.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ReprflowError, match=f"registry {re.escape(repr(root))}: not a gs://BUCKET/PREFIX URI"):
        Registry(root)
    with pytest.raises(ConfigError, match="cluster.registry"):
        validate_config({"data": {"uri": "x.csv"}, "cluster": {"registry": root}})
    assert list(tmp_path.iterdir()) == []
