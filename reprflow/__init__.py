"""reprflow: stable, predictable pretrained embeddings as Kubeflow Pipelines."""

from reprflow.version import IMAGE, __version__

__all__ = ["IMAGE", "__version__"]
