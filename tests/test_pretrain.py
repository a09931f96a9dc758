"""item2vec: pair generation, negative sampling, learning, determinism and resume after a kill."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from reprflow.components.common.stage import EXPECT_CUDA_ENV
from reprflow.components.pretrain.item2vec import (
    Item2VecConfig,
    SkipGram,
    epoch_pairs,
    make_baskets,
    negative_table,
    pairs_per_epoch,
    resolve_device,
    sample_negatives,
    train,
)


def two_cluster_baskets(n_baskets: int = 400, n_items: int = 40, seed: int = 0):
    """Baskets drawn from one of two disjoint halves of the catalogue."""
    rng = np.random.default_rng(seed)
    keys, items = [], []
    for b in range(n_baskets):
        half = rng.integers(2)
        chosen = rng.choice(n_items // 2, size=rng.integers(2, 8), replace=False) + half * (n_items // 2)
        keys += [f"inv{b}"] * len(chosen)
        items += chosen.tolist()
    return make_baskets(np.array(keys), np.array(items), n_items)


def test_make_baskets_deduplicates_and_drops_singletons() -> None:
    b = make_baskets(np.array(["a", "a", "a", "b", "c", "c"]), np.array([1, 1, 2, 3, 0, 2]), 4)
    assert sorted(zip(b.basket.tolist(), b.item.tolist())) == [(0, 1), (0, 2), (2, 0), (2, 2)]


def test_epoch_pairs_stay_in_basket_within_window_and_match_count() -> None:
    b = two_cluster_baskets()
    pairs = epoch_pairs(b, window=2, seed=3, epoch=1)
    assert len(pairs) == pairs_per_epoch(b, 2)
    members = {}
    for basket, item in zip(b.basket, b.item):
        members.setdefault(int(basket), set()).add(int(item))
    half = b.n_items // 2
    assert all((c < half) == (t < half) for c, t in pairs)  # never across the two clusters
    assert not np.any(pairs[:, 0] == pairs[:, 1])
    # Deterministic in (seed, epoch); different across epochs.
    assert np.array_equal(pairs, epoch_pairs(b, 2, 3, 1))
    assert not np.array_equal(pairs, epoch_pairs(b, 2, 3, 2))
    # With a window at least the largest basket, every ordered pair of a basket appears once.
    full = Counter(map(tuple, epoch_pairs(b, window=10, seed=0, epoch=0).tolist()))
    expected = Counter((c, t) for s in members.values() for c in s for t in s if c != t)
    assert full == expected


def test_negatives_follow_unigram_to_the_075() -> None:
    counts = np.array([1, 10, 100, 1000, 3, 3, 0, 250])
    draws = sample_negatives(negative_table(counts), (400_000,), seed=0, step=0).numpy()
    observed = np.bincount(draws, minlength=len(counts)) / len(draws)
    expected = counts**0.75 / (counts**0.75).sum()
    np.testing.assert_allclose(observed, expected, atol=3e-3)
    assert observed[6] == 0  # an item never seen is never a negative
    table = negative_table(counts)  # the alias table itself is exact: each item's mass adds up to n p_i
    mass = table.keep.numpy() + np.bincount(table.alias.numpy(), weights=1 - table.keep.numpy(), minlength=len(counts))
    np.testing.assert_allclose(mass, expected * len(counts), atol=1e-12)


def test_training_separates_clusters_and_is_deterministic() -> None:
    b = two_cluster_baskets()
    cfg = Item2VecConfig(dim=8, window=3, epochs=4, negatives=3, batch_size=64, learning_rate=0.02, device="cpu")
    first = train(b, cfg, seed=1, progress=False)
    again = train(b, cfg, seed=1, progress=False)
    other = train(b, cfg, seed=2, progress=False)
    assert np.array_equal(first.input, again.input) and np.array_equal(first.output, again.output)
    assert not np.allclose(first.input, other.input)
    assert first.epoch_loss[-1] < first.epoch_loss[0]
    e = first.input / np.linalg.norm(first.input, axis=1, keepdims=True)
    sim = e @ e.T
    half = b.n_items // 2
    same = np.concatenate([sim[:half, :half][np.triu_indices(half, 1)], sim[half:, half:][np.triu_indices(half, 1)]])
    cross = sim[:half, half:].ravel()
    assert same.mean() > cross.mean() + 0.3


def test_nothing_to_train_on_is_an_error_and_untrained_items_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    from reprflow.components.common.errors import DataError

    cfg = Item2VecConfig(dim=4, window=2, epochs=1, negatives=2, batch_size=8, learning_rate=0.02, device="cpu")
    singles = make_baskets(np.array(["a", "b", "c"]), np.array([0, 1, 2]), 3)  # every basket holds one item
    with pytest.raises(DataError, match="no basket holds two of the 3 vocabulary items"):
        train(singles, cfg, seed=0, progress=False)
    lonely = make_baskets(np.array(["a", "a", "b"]), np.array([0, 1, 2]), 3)  # item 2 is only ever bought alone
    with caplog.at_level("WARNING"):
        result = train(lonely, dataclasses.replace(cfg, epochs=5), seed=0, progress=False)  # the inputs move from step 2
    assert "1 of 3 items are in no basket with another vocabulary item" in caplog.text
    assert result.untrained_items == 1
    initial = SkipGram(3, 4, 0, cfg.learning_rate, torch.device("cpu")).input.numpy()
    assert np.array_equal(result.input[2], initial[2]) and not np.array_equal(result.input[:2], initial[:2])


CHILD = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from test_pretrain import two_cluster_baskets, RESUME_CONFIG
from reprflow.components.pretrain.item2vec import train
train(two_cluster_baskets(3000), RESUME_CONFIG, seed=5, checkpoint={ckpt!r}, progress=False)
"""
RESUME_CONFIG = Item2VecConfig(dim=8, window=3, epochs=3, negatives=3, batch_size=16, learning_rate=0.02,
                               checkpoint_every=20, device="cpu")


def test_killed_run_resumes_from_checkpoint_to_the_same_result(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt" / "seed-5.pt"
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(tests=str(Path(__file__).parent), ckpt=str(ckpt))])
    deadline = time.monotonic() + 120
    while not ckpt.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # let it get past the first checkpoint
    assert child.poll() is None, "the training process finished before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    baskets = two_cluster_baskets(3000)
    resumed = train(baskets, RESUME_CONFIG, seed=5, checkpoint=ckpt, progress=False)
    assert 0 < resumed.resumed_from_step < resumed.steps
    reference = train(baskets, RESUME_CONFIG, seed=5, progress=False)
    assert np.array_equal(resumed.input, reference.input)
    assert np.array_equal(resumed.output, reference.output)
    np.testing.assert_allclose(resumed.epoch_loss, reference.epoch_loss, rtol=1e-9)

    finished = train(baskets, RESUME_CONFIG, seed=5, checkpoint=ckpt, progress=False)
    assert finished.resumed_from_step == finished.steps  # nothing left to do
    assert np.array_equal(finished.input, reference.input)


def test_a_run_stopped_right_after_an_epoch_end_checkpoint_resumes_with_the_same_losses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    baskets = two_cluster_baskets(400)
    per_epoch = -(-pairs_per_epoch(baskets, 3) // 16)
    config = dataclasses.replace(RESUME_CONFIG, checkpoint_every=per_epoch)  # a checkpoint on each epoch's last step
    reference = train(baskets, config, seed=5, progress=False)
    real_step, calls = SkipGram.step, []

    def preempted_after_the_first_epoch(self, *args):
        calls.append(1)
        if len(calls) > per_epoch:
            raise KeyboardInterrupt
        return real_step(self, *args)

    monkeypatch.setattr(SkipGram, "step", preempted_after_the_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(baskets, config, seed=5, checkpoint=tmp_path / "seed-5.pt", progress=False)
    monkeypatch.setattr(SkipGram, "step", real_step)
    resumed = train(baskets, config, seed=5, checkpoint=tmp_path / "seed-5.pt", progress=False)
    assert resumed.resumed_from_step == per_epoch and np.array_equal(resumed.input, reference.input)
    np.testing.assert_allclose(resumed.epoch_loss, reference.epoch_loss, rtol=1e-9)


def test_cuda_request_without_cuda_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with a GPU
    with pytest.raises(RuntimeError, match="no CUDA device"):
        train(two_cluster_baskets(10), Item2VecConfig(device="cuda"), seed=0, progress=False)
    assert resolve_device("auto") == torch.device("cpu")
    # on a task placed on a GPU node, "auto" must not quietly fall back to the CPU
    monkeypatch.setenv(EXPECT_CUDA_ENV, "1")
    with pytest.raises(RuntimeError, match="no CUDA device is available on a task placed on a GPU node"):
        resolve_device("auto")


def test_closed_form_step_is_autograd_with_sparse_adam() -> None:
    """The written-out gradient and lazy Adam against the slow path: autograd on sparse embeddings
    and torch.optim.SparseAdam, step by step, repeated rows in the batch included."""
    n, d, batch, negatives, lr = 30, 8, 64, 4, 0.01
    model = SkipGram(n, d, seed=3, learning_rate=lr, device=torch.device("cpu"))
    model.output.normal_(generator=torch.Generator().manual_seed(4))  # non-zero: both tables get gradients
    ref_in = torch.nn.Embedding(n, d, sparse=True, _weight=model.input.clone())
    ref_out = torch.nn.Embedding(n, d, sparse=True, _weight=model.output.clone())
    opt = torch.optim.SparseAdam([ref_in.weight, ref_out.weight], lr=lr)
    g = torch.Generator().manual_seed(5)
    for _ in range(4):
        center, context = torch.randint(n, (batch,), generator=g), torch.randint(n, (batch,), generator=g)
        neg = torch.randint(n, (batch, negatives), generator=g)
        u = ref_in(center)
        pos = (u * ref_out(context)).sum(-1)
        negs = torch.bmm(ref_out(neg), u.unsqueeze(-1)).squeeze(-1)
        ref_loss = -(torch.nn.functional.logsigmoid(pos) + torch.nn.functional.logsigmoid(-negs).sum(-1)).mean()
        opt.zero_grad()
        ref_loss.backward()
        opt.step()
        assert model.step(center, context, neg) == pytest.approx(ref_loss.item(), rel=1e-6)
        torch.testing.assert_close(model.input, ref_in.weight.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model.output, ref_out.weight.detach(), rtol=1e-5, atol=1e-6)
