"""pytest plugin: one in-memory GCS emulator and one fault proxy in front of it, per session.

`gcs` (per test) yields a `GcsHandle`: a client factory (through the proxy by default, or
straight to the emulator), the proxy's controls (reset before and after every test), the bucket
and a prefix unique to the test, and the environment a subprocess needs to reach the proxy.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from gcs_faults import FaultProxy

BUCKET = "reprflow-test"


@dataclass
class GcsEnvironment:
    emulator_url: str
    proxy: FaultProxy
    bucket: str = BUCKET

    def client(self, direct: bool = False) -> Any:
        """A google-cloud-storage client for the proxy (or, `direct`, the emulator itself)."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        endpoint = self.emulator_url if direct else self.proxy.url
        return storage.Client(project="reprflow-test", credentials=AnonymousCredentials(),
                              client_options=ClientOptions(api_endpoint=endpoint))

    def env(self, direct: bool = False) -> dict[str, str]:
        """Environment variables that send a child process's default client here."""
        return {"STORAGE_EMULATOR_HOST": self.emulator_url if direct else self.proxy.url,
                "GOOGLE_CLOUD_PROJECT": "reprflow-test"}


@dataclass
class GcsHandle(GcsEnvironment):
    prefix: str = ""

    def uri(self, name: str = "") -> str:
        """gs://bucket/<test prefix>/<name>."""
        return f"gs://{self.bucket}/{self.prefix}/{name}".rstrip("/")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def gcs_environment() -> Iterator[GcsEnvironment]:
    from gcp_storage_emulator.server import create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    proxy = FaultProxy(f"http://127.0.0.1:{port}").start()
    try:
        yield GcsEnvironment(emulator_url=f"http://127.0.0.1:{port}", proxy=proxy)
    finally:
        proxy.stop()
        server.stop()


@pytest.fixture
def gcs(gcs_environment: GcsEnvironment, request: pytest.FixtureRequest) -> Iterator[GcsHandle]:
    env = gcs_environment
    env.proxy.reset()
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:80]
    yield GcsHandle(emulator_url=env.emulator_url, proxy=env.proxy, bucket=env.bucket, prefix=prefix)
    env.proxy.reset()
