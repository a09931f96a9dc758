"""Resource profiles: what a pipeline task asks of the cluster (pure data; applied in
pipelines/placement.py).

A run configuration's `resources` section maps stage names to profile names (`default` for the
stages it does not name). GPU profiles name a GKE accelerator and land on the GPU node pools of
`manifests/base/nodepools.yaml`; Spot profiles on Spot nodes, which can be preempted, so they get
more retries (pretraining resumes from its checkpoint in the artifact store).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    timeout_s: int
    retries: int
    accelerator: str | None = None  # GKE accelerator name, e.g. nvidia-l4
    gpus: int = 0
    spot: bool = False
    backoff: str = "60s"  # first retry after this; doubling, at most an hour


PROFILES: dict[str, Profile] = {
    "cpu-small": Profile("1", "2", "4Gi", "8Gi", timeout_s=2 * 3600, retries=2),
    "cpu-large": Profile("4", "8", "16Gi", "32Gi", timeout_s=6 * 3600, retries=2),
    # The L4 pool is Spot only (see manifests/README.md): preemptions are retried, and pretraining
    # resumes from its checkpoint in the artifact store.
    "gpu-l4": Profile("6", "7", "24Gi", "28Gi", timeout_s=6 * 3600, retries=6, accelerator="nvidia-l4", gpus=1,
                      spot=True),
    "gpu-a100": Profile("10", "11", "64Gi", "80Gi", timeout_s=12 * 3600, retries=2,
                        accelerator="nvidia-tesla-a100", gpus=1),
}

# The stages a `resources` section may name.
STAGES = ("default", "ingest", "pretrain", "embed", "collect", "featurize", "evaluate", "downstream", "report",
          "package", "score", "resolve", "compare", "promote", "handoff")
# Stages whose output depends on more than their inputs (data behind a URI that a producer may
# overwrite, the registry's current pointer, a publication): never served from the cache.
UNCACHEABLE = frozenset({"ingest", "resolve", "promote"})
DEFAULT_RESOURCES = {"default": "cpu-small", "pretrain": "cpu-large", "downstream": "cpu-large"}
