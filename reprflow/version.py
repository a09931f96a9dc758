"""The one place that names reprflow's version; the container image tags are derived from it."""

__version__ = "0.1.0"

IMAGE_REPOSITORY = "us-docker.pkg.dev/reprflow/images/reprflow"
IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"  # CPU build of PyTorch: every stage on CPU nodes
CUDA_IMAGE = f"{IMAGE_REPOSITORY}:{__version__}-cuda"  # CUDA build: the stages placed on GPU nodes
