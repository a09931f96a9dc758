"""Shared fixtures: the real Online Retail data from ../shared, sliced small for speed."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

# GCS emulator + fault proxy, KFP stand-in server (tests/ is on sys.path: it has no __init__.py)
pytest_plugins = ["gcs_fixtures", "kfp_fixtures"]
REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("REPRFLOW_DATA", REPO.parent / "shared" / "data" / "online-retail" / "online_retail.csv.gz"))


@pytest.fixture(scope="session")
def retail_path() -> Path:
    if not DATA.is_file():
        pytest.fail(f"the Online Retail data is missing at {DATA} (set REPRFLOW_DATA)")
    return DATA


@pytest.fixture(scope="session")
def retail_slice(retail_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 60,000 rows of the real file as a .csv, the raw text untouched."""
    df = pd.read_csv(retail_path, dtype=str, keep_default_na=False, nrows=60_000)
    path = tmp_path_factory.mktemp("data") / "retail_slice.csv"
    df.to_csv(path, index=False)
    return path
