"""ingest from gs:// against a real GCS JSON-API server (gcp-storage-emulator) on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from reprflow.components.common.errors import DataError
from reprflow.components.ingest.ingest import ingest


@pytest.fixture(scope="module")
def gcs(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    from gcp_storage_emulator.server import create_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="retail")
    server.start()
    monkeypatch_module.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    yield "retail"
    server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_gs_uri_reads_the_same_as_the_local_file(gcs: str, retail_slice: Path, tmp_path: Path) -> None:
    from google.cloud import storage

    local = tmp_path / "slice.csv.gz"
    pd.read_csv(retail_slice, dtype=str, keep_default_na=False, nrows=20_000).to_csv(local, index=False)
    storage.Client().bucket(gcs).blob("raw/2011/slice.csv.gz").upload_from_filename(local)
    remote = ingest(f"gs://{gcs}/raw/2011/slice.csv.gz", 2)
    pd.testing.assert_frame_equal(remote.interactions, ingest(str(local), 2).interactions)
    assert remote.stats == ingest(str(local), 2).stats


def test_missing_object_names_the_uri(gcs: str) -> None:
    with pytest.raises(DataError, match=f"gs://{gcs}/raw/none.csv: no such object$"):
        ingest(f"gs://{gcs}/raw/none.csv")


def test_a_folder_named_without_its_slash_is_explained(gcs: str, tmp_path: Path) -> None:
    from google.cloud import storage

    local = tmp_path / "part.csv"
    local.write_text("InvoiceNo,StockCode\n")
    storage.Client().bucket(gcs).blob("incoming/2011-09-01/part.csv").upload_from_filename(local)
    with pytest.raises(DataError, match=f"gs://{gcs}/incoming/2011-09-01: a folder, not an object; end it with '/'"):
        ingest(f"gs://{gcs}/incoming/2011-09-01")


def test_uri_without_object_is_rejected() -> None:
    with pytest.raises(DataError, match="needs a bucket and an object name"):
        ingest("gs://retail")
