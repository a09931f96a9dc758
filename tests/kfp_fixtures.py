"""Fixtures for tests that talk to the KFP stand-in server (tests/kfp_api_standin.py)."""

from __future__ import annotations

from pathlib import Path

import kfp
import pytest
from kfp_api_standin import SpecMissing, SpecValidator, load_spec

from reprflow.pipelines import kfp_server


@pytest.fixture(scope="session")
def validator() -> SpecValidator:
    """The official KFP API spec as a request validator; a missing spec fails the test, never skips it."""
    try:
        return SpecValidator(load_spec())
    except SpecMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture
def kfp_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No kfp context file from this machine's home, no token from the environment."""
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    monkeypatch.delenv(kfp_server.TOKEN_ENV, raising=False)
    monkeypatch.setenv(kfp_server.SA_TOKEN_PATH_ENV, str(tmp_path / "no-projected-token"))
    for name in ("REPRFLOW_KFP_NAMESPACE", "REPRFLOW_KFP_SERVICE_ACCOUNT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch
