"""gcs.GCS against a real GCS JSON-API server (gcp-storage-emulator) behind a fault-injecting proxy."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from reprflow.components.common.errors import DataError
from reprflow.components.common.gcs import (
    GCS,
    ChecksumMismatch,
    GenerationMismatch,
    ObjectNotFound,
    RetryPolicy,
    StorageError,
    file_crc32c,
    set_default_gcs,
)
from reprflow.components.common.storage import local_copy

FAST = RetryPolicy(initial_s=0.01, maximum_s=0.05, deadline_s=5.0)
MEDIA = "alt=media"
MULTIPART = "uploadType=multipart"
CHUNK = "upload_id="
MIB = 1024 * 1024


def transport(gcs, policy: RetryPolicy = FAST, **kw) -> GCS:
    return GCS(gcs.client(), retry=policy, **kw)


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 MiB of random bytes: a resumable upload of three 8 MiB chunks."""
    return random_file(tmp_path_factory.mktemp("big") / "big.bin", 20 * MIB)


def test_small_and_large_round_trip_with_checksums(gcs, big: Path, tmp_path: Path) -> None:
    g = transport(gcs)
    small = random_file(tmp_path / "small.bin", 3000)
    for src in (small, big):
        uri = gcs.uri(src.name)
        info = g.upload(src, uri)
        assert (info.size, info.crc32c) == (src.stat().st_size, file_crc32c(src))
        back = tmp_path / f"back-{src.name}"
        assert g.download(uri, back) == info
        assert back.read_bytes() == src.read_bytes()
    assert len(gcs.proxy.requests("POST", "")) == 2  # one multipart, one resumable start
    assert gcs.proxy.requests("POST", "")[0].query["uploadType"] == ["multipart"]
    assert len(gcs.proxy.requests("PUT", "")) == 3  # 8 + 8 + 4 MiB
    assert not list(tmp_path.glob(".*.part"))  # no temporary download left


@pytest.mark.parametrize("status", [503, 429])
def test_transient_statuses_are_retried_on_upload_and_download(gcs, big: Path, tmp_path: Path, status: int) -> None:
    g = transport(gcs)
    small = random_file(tmp_path / "small.bin", 5000)
    gcs.proxy.fail("POST", MULTIPART, times=2, status=status)
    gcs.proxy.fail("PUT", CHUNK, times=2, status=status, skip=1)  # the second chunk, twice
    gcs.proxy.fail("GET", MEDIA, times=2, status=status)
    g.upload(small, gcs.uri("small"))
    g.upload(big, gcs.uri("big"))
    g.download(gcs.uri("big"), tmp_path / "big.back")
    assert (tmp_path / "big.back").read_bytes() == big.read_bytes()
    assert g.download(gcs.uri("small"), tmp_path / "small.back").crc32c == file_crc32c(small)
    assert len([r for r in gcs.proxy.requests() if r.status == status]) == 6


def test_connection_cut_mid_chunk_is_resent_and_the_object_is_intact(gcs, big: Path, tmp_path: Path) -> None:
    gcs.proxy.cut_request("PUT", CHUNK, skip=1, at=0.3)  # 30% into the second chunk's body
    info = transport(gcs).upload(big, gcs.uri("big"))
    assert [r.fault for r in gcs.proxy.requests("PUT")].count("cut_request") == 1
    assert len(gcs.proxy.requests("PUT")) == 4  # the cut chunk was sent again
    transport(gcs).download(gcs.uri("big"), tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == big.read_bytes() and info.size == 20 * MIB


@pytest.mark.parametrize("chunk", [1, 2])
def test_lost_chunk_response_completes_intact_or_leaves_no_object(gcs, big: Path, tmp_path: Path, chunk: int) -> None:
    """The server stored the chunk but the client never heard: whole object or none, never part.

    The resent middle chunk is refused by the emulator (it already has those bytes), so that
    upload fails with nothing visible; the resent last chunk meets the finished session, which
    answers with the object (as GCS does), so the upload completes.
    """
    gcs.proxy.cut_response("PUT", CHUNK, skip=chunk)
    g = transport(gcs)
    try:
        g.upload(big, gcs.uri("big"))
    except StorageError as exc:
        assert chunk == 1 and str(exc).startswith(f"{gcs.uri('big')}: upload failed")
        assert g.stat(gcs.uri("big")) is None
    else:
        g.download(gcs.uri("big"), tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == big.read_bytes()
    assert [r.fault for r in gcs.proxy.requests("PUT")].count("cut_response") == 1
    assert chunk == 1 or g.stat(gcs.uri("big")) is not None


def test_download_cut_mid_body_resumes_and_is_verified_whole(gcs, big: Path, tmp_path: Path) -> None:
    g = transport(gcs)
    g.upload(big, gcs.uri("big"))
    gcs.proxy.cut_response("GET", MEDIA, at=0.4)
    g.download(gcs.uri("big"), tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == big.read_bytes()
    gets = gcs.proxy.requests("GET", "^/download/")
    assert gets[0].fault == "cut_response" and gets[1].headers.get("range", "").startswith("bytes=")


def test_corrupted_download_is_retried_once_then_refused(gcs, tmp_path: Path) -> None:
    g = transport(gcs)
    src = random_file(tmp_path / "src.bin", 100_000)
    g.upload(src, gcs.uri("obj"))
    gcs.proxy.corrupt_response("GET", MEDIA, times=1)  # a one-off flip in transit: the retry heals it
    g.download(gcs.uri("obj"), tmp_path / "once")
    assert (tmp_path / "once").read_bytes() == src.read_bytes()
    gcs.proxy.corrupt_response("GET", MEDIA, times=10)  # every attempt damaged: refused
    with pytest.raises(ChecksumMismatch, match=f"{gcs.uri('obj')}: download failed 2 times \\("):
        g.download(gcs.uri("obj"), tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad*"))


@pytest.mark.parametrize("size", ["small", "large"])
def test_body_corrupted_on_the_way_up_is_rejected_and_no_object_exists(gcs, big: Path, tmp_path: Path, size: str) -> None:
    src = big if size == "large" else random_file(tmp_path / "small.bin", 4000)
    if size == "large":
        gcs.proxy.corrupt_request("PUT", CHUNK, skip=2, at=0.9)  # the last chunk
    else:
        gcs.proxy.corrupt_request("POST", MULTIPART, at=0.9)  # in the file part of the body
    g = transport(gcs)
    with pytest.raises(StorageError, match=f"{gcs.uri('obj')}: upload failed"):
        g.upload(src, gcs.uri("obj"))
    assert g.stat(gcs.uri("obj")) is None


def test_stored_checksum_that_differs_deletes_the_object(gcs, tmp_path: Path) -> None:
    """The server claims a crc32c other than the file's: the upload is not trusted and removed."""
    src = random_file(tmp_path / "src.bin", 4000)

    def lie(body: bytes) -> bytes:
        obj = json.loads(body)
        obj["crc32c"] = base64.b64encode(b"\0\0\0\0").decode()
        return json.dumps(obj).encode()

    gcs.proxy.rewrite_response("POST", MULTIPART, lie)
    g = transport(gcs)
    with pytest.raises(ChecksumMismatch, match=f"{gcs.uri('obj')}: stored object .* does not match .* was deleted"):
        g.upload(src, gcs.uri("obj"))
    assert g.stat(gcs.uri("obj")) is None


@pytest.mark.parametrize("size", ["small", "large"])
def test_retries_exhausted_give_one_clear_error_and_nothing_visible(gcs, big: Path, tmp_path: Path, size: str) -> None:
    src = big if size == "large" else random_file(tmp_path / "small.bin", 4000)
    gcs.proxy.fail("PUT" if size == "large" else "POST", CHUNK if size == "large" else MULTIPART,
                   times=10**6, skip=1 if size == "large" else 0)
    g = transport(gcs, RetryPolicy(initial_s=0.01, maximum_s=0.05, deadline_s=0.5))
    with pytest.raises(StorageError) as err:
        g.upload(src, gcs.uri("obj"))
    message = str(err.value)
    assert message.startswith(f"{gcs.uri('obj')}: upload failed after retrying for up to 0.5 s (HTTP 503")
    assert "\n" not in message and len(message) < 400
    assert transport(gcs).stat(gcs.uri("obj")) is None
    assert len([r for r in gcs.proxy.requests() if r.status == 503]) > 3


def test_missing_object_is_not_retried_and_named(gcs, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound, match=f"{gcs.uri('none')}: cannot read object"):
        transport(gcs).download(gcs.uri("none"), tmp_path / "x")
    assert [r.status for r in gcs.proxy.requests("GET", "/o/")] == [404]  # asked once, not retried


def test_download_racing_an_overwrite_gets_the_new_object(gcs, tmp_path: Path) -> None:
    g = transport(gcs)
    uri = gcs.uri("race.bin")
    g.upload_bytes(b"old", uri)
    real_stat = g.stat

    def stat_then_overwrite(u: str, **kw):
        info = real_stat(u, **kw)
        g.stat = real_stat
        g.upload_bytes(b"new content", uri)  # another writer replaces the object after our stat
        # GCS without object versioning answers 404 for a replaced generation (the emulator serves any)
        gcs.proxy.fail("GET", f"generation={info.generation}", times=5, status=404)
        return info

    g.stat = stat_then_overwrite
    assert g.download(uri, tmp_path / "out").size == len(b"new content")
    assert (tmp_path / "out").read_bytes() == b"new content"


def test_a_bucket_root_lists_like_any_prefix(gcs) -> None:
    g = transport(gcs)
    g.upload_bytes(b"x", gcs.uri("a.csv"))
    for root in (f"gs://{gcs.bucket}/", f"gs://{gcs.bucket}"):
        assert gcs.uri("a.csv") in [o.uri for o in g.list(root)]


def test_generation_preconditions_hold_through_the_proxy(gcs, tmp_path: Path) -> None:
    g, direct = transport(gcs), GCS(gcs.client(direct=True), retry=FAST)
    first = g.write_json(gcs.uri("p.json"), {"n": 1}, if_generation_match=0)
    # The emulator alone ignores preconditions (why the proxy enforces them):
    direct.write_json(gcs.uri("p.json"), {"n": 2}, if_generation_match=first.generation)
    with pytest.raises(GenerationMismatch, match=f"{gcs.uri('p.json')}: upload refused: expected generation 0, found"):
        g.write_json(gcs.uri("p.json"), {"n": 3}, if_generation_match=0)
    with pytest.raises(GenerationMismatch):
        g.write_json(gcs.uri("p.json"), {"n": 3}, if_generation_match=first.generation)
    obj, info = g.read_json(gcs.uri("p.json"))
    assert obj == {"n": 2}
    assert g.write_json(gcs.uri("p.json"), {"n": 4}, if_generation_match=info.generation).generation > info.generation
    assert [r.status for r in gcs.proxy.requests("POST")].count(412) == 2


def test_conditional_write_whose_response_was_lost_is_recognized_as_ours(gcs) -> None:
    """The write landed, the reply was cut, the retry meets 412: the object holds our bytes, so success."""
    gcs.proxy.cut_response("POST", MULTIPART)
    g = transport(gcs)
    info = g.write_json(gcs.uri("p.json"), {"n": 1}, if_generation_match=0)
    assert [r.status for r in gcs.proxy.requests("POST")] == [200, 412]
    assert g.read_json(gcs.uri("p.json")) == ({"n": 1}, info)


def test_local_copy_goes_through_the_verified_transport(gcs, tmp_path: Path) -> None:
    src = random_file(tmp_path / "data.csv.gz", 2000)
    set_default_gcs(transport(gcs))
    try:
        transport(gcs).upload(src, gcs.uri("data.csv.gz"))
        gcs.proxy.fail("GET", MEDIA, times=2)
        with local_copy(gcs.uri("data.csv.gz")) as path:
            assert path.read_bytes() == src.read_bytes() and path.name.endswith(".csv.gz")
        with pytest.raises(DataError, match=f"{gcs.uri('none.csv')}: no such object"):
            with local_copy(gcs.uri("none.csv")):
                pass
    finally:
        set_default_gcs(None)


def test_chunk_size_must_be_a_multiple_of_256_kib(gcs) -> None:
    with pytest.raises(ValueError, match="multiple of 256 KiB"):
        GCS(gcs.client(), chunk_size=1000 * 1000)
