"""Placing pipeline tasks on the cluster: one helper applies a resource profile to a task.

A profile (components/common/profiles.py) sets CPU and memory requests and limits, a GPU (type
and count, the CUDA image, the GKE node selector and the tolerations of the GPU node pools),
Spot placement, a timeout, retries with exponential backoff, and caching: on for stages whose
output is a function of their inputs, off for the ones that read something that can change under
the same name.

`reprflow run` builds its pipelines without placement: the DAG is the same, and retries would
only repeat a failure that is deterministic on one machine.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Protocol

from kfp import dsl, kubernetes
from kfp.dsl import PipelineTask
from kfp.dsl.python_component import PythonComponent

from reprflow.components.common.profiles import PROFILES, UNCACHEABLE, Profile
from reprflow.components.common.stage import EXPECT_CUDA_ENV
from reprflow.version import CUDA_IMAGE

ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
SPOT_LABEL = "cloud.google.com/gke-spot"
GPU_RESOURCE = "nvidia.com/gpu"
# The taints of the GPU node pools (manifests/base/nodepools.yaml) that GPU and Spot tasks tolerate.
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
SPOT_TOLERATION = {"key": SPOT_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}


def whole_cores(quantity: str) -> int:
    """A Kubernetes CPU quantity ("2", "1.5", "500m") as whole cores, at least 1."""
    cores = float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
    return max(1, int(cores))


def apply_profile(task: PipelineTask, profile: Profile, cache: bool) -> PipelineTask:
    """Set the profile's resources, placement, timeout, retries and caching on a task."""
    task.set_cpu_request(profile.cpu_request).set_cpu_limit(profile.cpu_limit)
    task.set_memory_request(profile.memory_request).set_memory_limit(profile.memory_limit)
    # torch and OpenBLAS otherwise start a thread per core of the node, not of the CPU limit,
    # and the container is throttled
    task.set_env_variable("OMP_NUM_THREADS", str(whole_cores(profile.cpu_limit)))
    if profile.accelerator:
        task.set_env_variable(EXPECT_CUDA_ENV, "1")
        task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(profile.gpus)
        kubernetes.add_node_selector(task, ACCELERATOR_LABEL, profile.accelerator)
        kubernetes.add_toleration(task, **GPU_TOLERATION)
    if profile.spot:
        kubernetes.add_node_selector(task, SPOT_LABEL, "true")
        kubernetes.add_toleration(task, **SPOT_TOLERATION)
    kubernetes.set_timeout(task, profile.timeout_s)
    task.set_retry(profile.retries, backoff_duration=profile.backoff, backoff_factor=2.0, backoff_max_duration="3600s")
    task.set_caching_options(cache)
    return task


@functools.cache
def on_cuda_image(component: PythonComponent) -> PythonComponent:
    """The same component in the CUDA image (same name, inputs and code), for GPU nodes."""
    return dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)(component.python_func)


class Place(Protocol):
    def __call__(self, stage: str, component: PythonComponent, **arguments: Any) -> PipelineTask: ...


def placement(resources: Mapping[str, str] | None) -> Place:
    """`place(stage, component, **arguments)`: the task, placed by the stage's profile in
    `resources` (its `default` for stages it does not name).

    With `resources` None (local runs and tests) the task is created as it is."""

    def place(stage: str, component: PythonComponent, **arguments: Any) -> PipelineTask:
        if resources is None:
            return component(**arguments)
        profile = PROFILES[resources.get(stage, resources.get("default", "cpu-small"))]
        if profile.accelerator:
            component = on_cuda_image(component)
        return apply_profile(component(**arguments), profile, cache=stage not in UNCACHEABLE)

    return place
