"""The one place that names reprflow's version; the container image tag is derived from it."""

__version__ = "0.1.0"

IMAGE_REPOSITORY = "us-docker.pkg.dev/reprflow/images/reprflow"
IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"
