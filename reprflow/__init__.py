"""reprflow: stable, predictable pretrained embeddings as Kubeflow Pipelines."""

from reprflow.version import CUDA_IMAGE, IMAGE, __version__

__all__ = ["CUDA_IMAGE", "IMAGE", "__version__"]
