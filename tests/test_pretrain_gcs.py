"""Pretraining checkpoints in gs://: a run killed on one "node" resumes on another from the upload."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from reprflow.components.common.gcs import GCS
from reprflow.components.pretrain.item2vec import Item2VecConfig, train
from test_pretrain import two_cluster_baskets

CONFIG = Item2VecConfig(dim=8, window=3, epochs=3, negatives=3, batch_size=16, learning_rate=0.02,
                        checkpoint_every=100, device="cpu")
N_BASKETS = 600
CHILD = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from test_pretrain import two_cluster_baskets
from test_pretrain_gcs import CONFIG, N_BASKETS
from reprflow.components.pretrain.item2vec import train
r = train(two_cluster_baskets(N_BASKETS), CONFIG, seed=5, checkpoint={uri!r}, progress=False)
np.save({out!r} + "/input.npy", r.input)
np.save({out!r} + "/output.npy", r.output)
open({out!r} + "/steps.txt", "w").write(f"{{r.resumed_from_step}} {{r.steps}}")
"""


def node(gcs, uri: str, root: Path) -> tuple[subprocess.Popen, Path]:
    """A fresh process with its own empty temporary directory, as on a new node."""
    (root / "tmp").mkdir(parents=True)
    (root / "out").mkdir()
    env = os.environ | gcs.env() | {"TMPDIR": str(root / "tmp")}
    code = CHILD.format(tests=str(Path(__file__).parent), uri=uri, out=str(root / "out"))
    return subprocess.Popen([sys.executable, "-c", code], env=env), root / "out"


def test_killed_run_resumes_on_a_new_node_from_the_gcs_checkpoint(gcs, tmp_path: Path) -> None:
    uri = gcs.uri("checkpoints/key/seed-5.pt")
    g = GCS(gcs.client(direct=True))
    first, _ = node(gcs, uri, tmp_path / "node1")
    deadline = time.monotonic() + 120
    while g.stat(uri) is None and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # past the first upload, into the next stretch of training
    assert first.poll() is None, "the training process finished before it could be killed"
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    uploads = len(gcs.proxy.requests("POST", "uploadType=multipart"))
    assert uploads >= 1

    second, out = node(gcs, uri, tmp_path / "node2")
    assert second.wait(timeout=120) == 0
    resumed_from, steps = map(int, (out / "steps.txt").read_text().split())
    assert 0 < resumed_from < steps and resumed_from % CONFIG.checkpoint_every == 0
    assert not list((tmp_path / "node2" / "tmp").glob("reprflow-ckpt-*"))  # the local copy was cleaned up

    reference = train(two_cluster_baskets(N_BASKETS), CONFIG, seed=5, progress=False)
    assert steps == reference.steps
    assert np.array_equal(np.load(out / "input.npy", allow_pickle=False), reference.input)
    assert np.array_equal(np.load(out / "output.npy", allow_pickle=False), reference.output)

    g.download(uri, tmp_path / "final.pt")  # the last save was uploaded too
    assert torch.load(tmp_path / "final.pt", weights_only=True)["step"] == steps
