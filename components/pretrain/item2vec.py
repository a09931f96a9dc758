"""item2vec: skip-gram with negative sampling over shopping baskets (Barkan & Koenigstein, 2016).

For a (center c, context t) pair of items bought together and negatives n_1..n_N drawn from the
unigram distribution raised to 0.75 (Mikolov et al., 2013):

    loss = -log sigma(u_c . v_t) - sum_j log sigma(-u_c . v_{n_j})

with separate input (u) and output (v) tables of shape (n_items, dim). Context: each epoch every
basket is shuffled and items within `window` positions of each other form pairs, both ways, so
large baskets do not dominate quadratically. All randomness derives from (seed, epoch, step), so a
run resumed from a checkpoint produces exactly what the uninterrupted run would have.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from reprflow.components.pretrain.checkpoints import CheckpointStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item2VecConfig:
    dim: int = 64
    window: int = 5
    epochs: int = 5
    negatives: int = 5
    batch_size: int = 4096
    learning_rate: float = 0.005
    checkpoint_every: int = 500
    device: str = "auto"


@dataclass(frozen=True)
class Baskets:
    """Baskets as a flat item array grouped by basket: items[basket == b] are basket b's items."""

    basket: np.ndarray  # (n_events,) int64, non-decreasing
    item: np.ndarray  # (n_events,) int64 in [0, n_items)
    n_items: int

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for a in (self.basket, self.item):
            h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
        h.update(str(self.n_items).encode())
        return h.hexdigest()[:16]

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.item, minlength=self.n_items)


def make_baskets(basket_keys: np.ndarray, item_index: np.ndarray, n_items: int) -> Baskets:
    """Unique (basket, item) events from parallel arrays; baskets with one item carry no pairs."""
    codes, basket = np.unique(np.asarray(basket_keys), return_inverse=True)
    pairs = np.unique(np.stack([basket.astype(np.int64), item_index.astype(np.int64)], 1), axis=0)
    sizes = np.bincount(pairs[:, 0], minlength=len(codes))
    pairs = pairs[sizes[pairs[:, 0]] >= 2]
    return Baskets(pairs[:, 0], pairs[:, 1], n_items)


def epoch_pairs(baskets: Baskets, window: int, seed: int, epoch: int) -> np.ndarray:
    """(n_pairs, 2) shuffled (center, context) pairs for one epoch, deterministic in (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch, 0])
    order = np.lexsort((rng.random(len(baskets.item)), baskets.basket))
    item, basket = baskets.item[order], baskets.basket[order]
    parts = []
    for offset in range(1, window + 1):
        same = basket[:-offset] == basket[offset:]
        a, b = item[:-offset][same], item[offset:][same]
        parts += [np.stack([a, b], 1), np.stack([b, a], 1)]
    pairs = np.concatenate(parts)
    return pairs[rng.permutation(len(pairs))]


def pairs_per_epoch(baskets: Baskets, window: int) -> int:
    """Number of pairs `epoch_pairs` yields: 2 * sum over baskets and offsets of max(size - o, 0)."""
    sizes = np.bincount(baskets.basket)
    return int(2 * sum(np.clip(sizes - o, 0, None).sum() for o in range(1, window + 1)))


def negative_cdf(counts: np.ndarray, power: float = 0.75) -> torch.Tensor:
    p = counts.astype(np.float64) ** power
    return torch.from_numpy(np.cumsum(p / p.sum()))


def sample_negatives(cdf: torch.Tensor, shape: tuple[int, ...], seed: int, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))
    u = torch.rand(shape, generator=g, dtype=torch.float64)
    return torch.searchsorted(cdf, u).clamp_(max=len(cdf) - 1)


class SkipGram(torch.nn.Module):
    def __init__(self, n_items: int, dim: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.input = torch.nn.Embedding(n_items, dim, sparse=True)
        self.output = torch.nn.Embedding(n_items, dim, sparse=True)
        with torch.no_grad():
            self.input.weight.copy_((torch.rand(n_items, dim, generator=g) - 0.5) / dim)
            self.output.weight.zero_()

    def forward(self, center: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        u = self.input(center)  # (B, d)
        pos = (u * self.output(context)).sum(-1)  # (B,)
        neg = torch.bmm(self.output(negatives), u.unsqueeze(-1)).squeeze(-1)  # (B, N)
        return -(torch.nn.functional.logsigmoid(pos) + torch.nn.functional.logsigmoid(-neg).sum(-1)).mean()


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("pretrain.device is 'cuda' but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@dataclass
class TrainResult:
    input: np.ndarray
    output: np.ndarray
    steps: int
    resumed_from_step: int
    epoch_loss: list[float]
    pairs_per_second: float
    device: str


def _save_checkpoint(
    path: Path, model: SkipGram, opt: torch.optim.Optimizer, step: int, losses: list[float], running: float
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    state = {
        "model": {k: v.cpu() for k, v in model.state_dict().items()},
        "optimizer": opt.state_dict(),
        "step": step,
        "epoch_loss": losses,  # mean loss of each completed epoch
        "running_loss": running,  # sum of batch losses so far in the current epoch
    }
    torch.save(state, tmp)
    os.replace(tmp, path)  # a reader sees the old checkpoint or the new one, never half of one


def train(
    baskets: Baskets,
    config: Item2VecConfig,
    seed: int,
    checkpoint: str | os.PathLike | CheckpointStore | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train item2vec; with `checkpoint`, resume from it if present and save to it as it goes.

    `checkpoint` is a local file or a `gs://` object (saved locally, uploaded after every save).
    """
    store = checkpoint if isinstance(checkpoint, CheckpointStore) or checkpoint is None else CheckpointStore(checkpoint)
    try:
        return _train(baskets, config, seed, store, progress)
    finally:
        if store is not None and store is not checkpoint:
            store.close()


def _train(
    baskets: Baskets, config: Item2VecConfig, seed: int, store: CheckpointStore | None, progress: bool
) -> TrainResult:
    device = resolve_device(config.device)
    model = SkipGram(baskets.n_items, config.dim, seed).to(device)
    opt = torch.optim.SparseAdam(list(model.parameters()), lr=config.learning_rate)
    cdf = negative_cdf(baskets.item_counts())
    steps_per_epoch = -(-pairs_per_epoch(baskets, config.window) // config.batch_size)
    total = steps_per_epoch * config.epochs
    step, losses, running = 0, [], 0.0
    if store is not None and store.pull():
        state = torch.load(store.local_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, losses, running = int(state["step"]), list(state["epoch_loss"]), float(state["running_loss"])
        log.info("seed %d: resumed from %s at step %d of %d", seed, store, step, total)
    resumed_from = step

    started, trained_pairs = time.perf_counter(), 0
    bar = tqdm(total=total, initial=step, desc=f"pretrain seed {seed}", disable=not progress, unit="step",
               mininterval=0.5 if sys.stderr.isatty() else 15.0)  # logs, not a terminal: fewer lines
    while step < total:
        epoch, offset = divmod(step, steps_per_epoch)
        pairs = torch.from_numpy(epoch_pairs(baskets, config.window, seed, epoch))
        for b in range(offset, steps_per_epoch):
            batch = pairs[b * config.batch_size : (b + 1) * config.batch_size]
            neg = sample_negatives(cdf, (len(batch), config.negatives), seed, step)
            loss = model(batch[:, 0].to(device), batch[:, 1].to(device), neg.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item()
            trained_pairs += len(batch)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{running / (b + 1):.4f}", epoch=epoch, refresh=False)
            if store is not None and step % config.checkpoint_every == 0 and step < total:
                _save_checkpoint(store.local_path, model, opt, step, losses, running)
                store.push()
        losses.append(running / steps_per_epoch)
        running = 0.0
        log.info("seed %d epoch %d: mean loss %.4f", seed, epoch, losses[-1])
    bar.close()
    elapsed = time.perf_counter() - started
    if store is not None:
        _save_checkpoint(store.local_path, model, opt, step, losses, 0.0)
        store.push()
    return TrainResult(
        input=model.input.weight.detach().cpu().numpy().astype(np.float32),
        output=model.output.weight.detach().cpu().numpy().astype(np.float32),
        steps=step,
        resumed_from_step=resumed_from,
        epoch_loss=losses,
        pairs_per_second=trained_pairs / elapsed if elapsed > 0 else 0.0,
        device=str(device),
    )


def checkpoint_key(config: Item2VecConfig, baskets: Baskets, seed: int) -> str:
    """Checkpoints are reused only for the same data, hyperparameters and seed."""
    cfg = {k: v for k, v in asdict(config).items() if k not in ("checkpoint_every", "device")}
    h = hashlib.sha256(f"{sorted(cfg.items())}|{baskets.fingerprint()}|{seed}".encode()).hexdigest()
    return h[:16]
