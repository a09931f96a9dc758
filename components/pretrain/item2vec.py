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
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from reprflow.components.common.errors import DataError
from reprflow.components.common.stage import EXPECT_CUDA_ENV
from reprflow.components.pretrain.checkpoints import CheckpointStore

log = logging.getLogger(__name__)
TRAINER = "sgns-lazy-adam/2"  # in the checkpoint key: a checkpoint of another trainer is never resumed


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


@dataclass(frozen=True)
class AliasTable:
    """Walker's alias method for the unigram^power distribution: O(1) per draw, exact.

    Item i is drawn with probability p_i: pick a column k uniformly, keep it with probability
    keep[k], else take alias[k] (Walker 1977; Vose 1991 for the construction)."""

    keep: torch.Tensor  # (n,) float64
    alias: torch.Tensor  # (n,) int64


def negative_table(counts: np.ndarray, power: float = 0.75) -> AliasTable:
    p = counts.astype(np.float64) ** power
    scaled = p / p.sum() * len(p)
    keep, alias = np.ones(len(p)), np.arange(len(p))
    small = [i for i in range(len(p)) if scaled[i] < 1.0]
    large = [i for i in range(len(p)) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        keep[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return AliasTable(torch.from_numpy(keep), torch.from_numpy(alias))


def sample_negatives(table: AliasTable, shape: tuple[int, ...], seed: int, step: int) -> torch.Tensor:
    """Draws for one training step, deterministic in (seed, step)."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(step))
    column = torch.randint(len(table.keep), shape, generator=g)
    coin = torch.rand(shape, generator=g, dtype=torch.float64)
    return torch.where(coin < table.keep[column], column, table.alias[column])


class SkipGram:
    """Input (u) and output (v) tables trained by lazy Adam, with the SGNS gradient in closed form.

    For a batch of B (center c, context t) pairs with negatives n_bj and the mean loss
    L = -1/B sum_b [log sigma(u_c . v_t) + sum_j log sigma(-u_c . v_n)], with g+ = sigma(u_c . v_t) - 1
    and g-_j = sigma(u_c . v_nj):

        dL/du_c = (g+ v_t + sum_j g-_j v_nj) / B,   dL/dv_t = g+ u_c / B,   dL/dv_nj = g-_j u_c / B,

    summed over repeated rows. The update is lazy Adam, as torch.optim.SparseAdam does it: only the
    rows in the batch move, their moments decay only when they do, bias correction counts steps.
    Written out rather than autograd + SparseAdam: no sparse tensors to coalesce, about twice the
    pairs per second on a CPU (tests check it against both).
    """

    BETAS = (0.9, 0.999)
    EPS = 1e-8

    def __init__(self, n_items: int, dim: int, seed: int, learning_rate: float, device: torch.device):
        g = torch.Generator().manual_seed(seed)
        self.input = ((torch.rand(n_items, dim, generator=g) - 0.5) / dim).to(device)
        self.output = torch.zeros(n_items, dim, device=device)
        self.moments = {name: (torch.zeros_like(t), torch.zeros_like(t)) for name, t in self.tables().items()}
        self.learning_rate = learning_rate
        self.steps = 0

    def tables(self) -> dict[str, torch.Tensor]:
        return {"input": self.input, "output": self.output}

    def step(self, center: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> float:
        """One update on a batch; returns the batch's mean loss (before the update)."""
        b, n = negatives.shape
        u, v_pos, v_neg = self.input[center], self.output[context], self.output[negatives]  # (B,d) (B,d) (B,N,d)
        pos = (u * v_pos).sum(-1)
        neg = torch.bmm(v_neg, u.unsqueeze(-1)).squeeze(-1)  # (B, N)
        loss = -(torch.nn.functional.logsigmoid(pos) + torch.nn.functional.logsigmoid(-neg).sum(-1)).mean()
        g_pos = (torch.sigmoid(pos) - 1) / b
        g_neg = torch.sigmoid(neg) / b
        grad_u = g_pos[:, None] * v_pos + torch.bmm(g_neg.unsqueeze(1), v_neg).squeeze(1)
        self.steps += 1
        self._adam("input", center, [grad_u])
        self._adam("output", torch.cat([context, negatives.reshape(-1)]),
                   [g_pos[:, None] * u, (g_neg.unsqueeze(-1) * u.unsqueeze(1)).reshape(b * n, -1)])
        return float(loss)

    def _adam(self, name: str, rows: torch.Tensor, grads: list[torch.Tensor]) -> None:
        """Lazy Adam on the rows `rows` of table `name`; grads are row gradients in `rows` order."""
        table, (mean, square) = self.tables()[name], self.moments[name]
        if len(table) <= 4 * len(rows):  # a small table: sum into a dense scratch, no sort
            unique = torch.nonzero(torch.bincount(rows, minlength=len(table))).squeeze(1)
            slots, grad = rows, torch.zeros_like(table)
        else:
            unique, slots = torch.unique(rows, return_inverse=True)
            grad = torch.zeros(len(unique), table.shape[1], device=table.device)
        start = 0
        for part in grads:  # summed per row without concatenating the parts
            grad.index_add_(0, slots[start : start + len(part)], part)
            start += len(part)
        if len(grad) != len(unique):
            grad = grad[unique]
        b1, b2 = self.BETAS
        m = mean[unique].mul_(b1).add_(grad, alpha=1 - b1)
        v = square[unique].mul_(b2).addcmul_(grad, grad, value=1 - b2)
        mean[unique], square[unique] = m, v
        step_size = self.learning_rate * math.sqrt(1 - b2**self.steps) / (1 - b1**self.steps)
        table.index_add_(0, unique, m.div_(v.sqrt_().add_(self.EPS)), alpha=-step_size)

    def state_dict(self) -> dict[str, object]:
        return {"steps": self.steps, **{k: t.cpu() for k, t in self.tables().items()},
                **{f"{k}_adam_{i}": m.cpu() for k, pair in self.moments.items() for i, m in enumerate(pair)}}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        for name, table in self.tables().items():
            table.copy_(state[name])
            for i, moment in enumerate(self.moments[name]):
                moment.copy_(state[f"{name}_adam_{i}"])


def resolve_device(name: str) -> torch.device:
    """"auto" is CUDA when there is a device, else the CPU; but on a task placed on a GPU node
    ($REPRFLOW_EXPECT_CUDA=1) it must be CUDA: a silent CPU run would waste the reserved GPU."""
    on_gpu_node = os.environ.get(EXPECT_CUDA_ENV) == "1"
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() or on_gpu_node else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        where = " on a task placed on a GPU node (is the driver's library path, LD_LIBRARY_PATH, set?)" \
            if on_gpu_node else ""
        raise RuntimeError(f"pretrain.device is 'cuda' but no CUDA device is available{where}")
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
    untrained_items: int  # rows left at their random initial values: the item is in no pair


def _save_checkpoint(path: Path, model: SkipGram, step: int, losses: list[float], running: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    state = {
        "model": model.state_dict(),
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
    counts = baskets.item_counts()
    pairs = pairs_per_epoch(baskets, config.window)
    if pairs == 0:
        raise DataError(f"no basket holds two of the {baskets.n_items} vocabulary items: there is nothing to train on")
    untrained = int((counts == 0).sum())
    if untrained:
        log.warning("seed %d: %d of %d items are in no basket with another vocabulary item; their rows keep their "
                    "random initial values", seed, untrained, baskets.n_items)
    device = resolve_device(config.device)
    model = SkipGram(baskets.n_items, config.dim, seed, config.learning_rate, device)
    negatives = negative_table(counts)
    steps_per_epoch = -(-pairs // config.batch_size)
    total = steps_per_epoch * config.epochs
    step, losses, running = 0, [], 0.0
    if store is not None and store.pull():
        state = torch.load(store.local_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
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
            neg = sample_negatives(negatives, (len(batch), config.negatives), seed, step)
            running += model.step(batch[:, 0].to(device), batch[:, 1].to(device), neg.to(device))
            trained_pairs += len(batch)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{running / (b + 1):.4f}", epoch=epoch, refresh=False)
            if b + 1 == steps_per_epoch:  # before a checkpoint at this step, so that it holds the epoch's mean
                losses.append(running / steps_per_epoch)
                running = 0.0
                log.info("seed %d epoch %d: mean loss %.4f", seed, epoch, losses[-1])
            if store is not None and step % config.checkpoint_every == 0 and step < total:
                _save_checkpoint(store.local_path, model, step, losses, running)
                store.push()
    bar.close()
    elapsed = time.perf_counter() - started
    if store is not None:
        _save_checkpoint(store.local_path, model, step, losses, 0.0)
        store.push()
    return TrainResult(
        input=model.input.cpu().numpy().astype(np.float32),
        output=model.output.cpu().numpy().astype(np.float32),
        steps=step,
        resumed_from_step=resumed_from,
        epoch_loss=losses,
        pairs_per_second=trained_pairs / elapsed if elapsed > 0 else 0.0,
        device=str(device),
        untrained_items=untrained,
    )


def checkpoint_key(config: Item2VecConfig, baskets: Baskets, seed: int) -> str:
    """Checkpoints are reused only for the same trainer, data, hyperparameters and seed."""
    cfg = {k: v for k, v in asdict(config).items() if k not in ("checkpoint_every", "device")}
    h = hashlib.sha256(f"{TRAINER}|{sorted(cfg.items())}|{baskets.fingerprint()}|{seed}".encode()).hexdigest()
    return h[:16]
