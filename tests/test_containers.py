"""The images: the Dockerfile parses, what it copies exists, it runs as a non-root user from pinned
bases, the build recipe tags from the package version, and every component's entry point exists
in the package the image installs."""

from __future__ import annotations

import ast
import importlib
import re
import runpy
import tomllib
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from reprflow.components.common.config import validate_config
from reprflow.pipelines.compile import PIPELINES, compile_pipeline
from reprflow.version import CUDA_IMAGE, IMAGE, IMAGE_REPOSITORY, __version__

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "containers" / "Dockerfile"
CLOUDBUILD = REPO / "containers" / "cloudbuild.yaml"


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(path=str(DOCKERFILE))
    assert parser.structure, f"{DOCKERFILE} did not parse"
    return parser


def _instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in parser.structure if i["instruction"] == name]


def _stages(parser: DockerfileParser) -> list[list[dict]]:
    """The instructions of each stage, in order (global ARGs before the first FROM dropped)."""
    stages: list[list[dict]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_base_images_are_pinned_to_exact_versions(dockerfile: DockerfileParser) -> None:
    global_args = dict(a.split("=", 1) for a in _instructions(dockerfile, "ARG") if "=" in a)
    stage_names = {v.split()[-1] for v in _instructions(dockerfile, "FROM") if " AS " in v.upper()}
    bases = []
    for value in _instructions(dockerfile, "FROM"):
        image = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], value.split()[0])
        if image.split(":")[0] in stage_names or any(image == f"torch-{v}" for v in ("cpu", "cuda")):
            continue  # a stage of this file
        bases.append(image)
    assert bases, "no external base image found"
    for image in bases:
        name, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), f"{image}: pin an exact version"


def test_every_copy_source_exists_and_passes_dockerignore(dockerfile: DockerfileParser) -> None:
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copies = [v for v in _instructions(dockerfile, "COPY") if not v.startswith("--from=")]
    assert copies
    for value in copies:
        *sources, _ = value.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            assert source.rstrip("/") in allowed, f"COPY {source}: excluded from the build context by .dockerignore"


def test_runtime_stage_is_non_root_and_runs_the_cli(dockerfile: DockerfileParser) -> None:
    runtime = _stages(dockerfile)[-1]
    users = [i["value"] for i in runtime if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the runtime stage must switch to a non-root user"
    entrypoint = [i["value"] for i in runtime if i["instruction"] == "ENTRYPOINT"]
    assert entrypoint and ast.literal_eval(entrypoint[-1])[0] == "reprflow"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["reprflow"].split(":")
    assert callable(getattr(importlib.import_module(module), func))
    assert not any(i["instruction"] == "RUN" and "pip install" in i["value"] for i in runtime), "install in the build stage"


def test_runtime_finds_the_gke_nvidia_driver(dockerfile: DockerfileParser) -> None:
    """GKE mounts the driver at /usr/local/nvidia; without it on the library path torch sees no GPU."""
    runtime = _stages(dockerfile)[-1]
    env = " ".join(i["value"] for i in runtime if i["instruction"] == "ENV")
    path = re.search(r"LD_LIBRARY_PATH=(\S+)", env)
    assert path and "/usr/local/nvidia/lib64" in path.group(1).split(":")


def test_both_variants_install_the_pinned_torch(dockerfile: DockerfileParser) -> None:
    runs = {stage[0]["value"].split()[-1]: " ".join(i["value"] for i in stage if i["instruction"] == "RUN")
            for stage in _stages(dockerfile)}
    assert "torch==2.13.0" in runs["torch-cpu"] and "/whl/cpu" in runs["torch-cpu"]
    assert "torch==2.13.0" in runs["torch-cuda"] and "/whl/cpu" not in runs["torch-cuda"]
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in pins


def test_tags_come_from_the_package_version() -> None:
    assert IMAGE == f"{IMAGE_REPOSITORY}:{__version__}" and CUDA_IMAGE == f"{IMAGE_REPOSITORY}:{__version__}-cuda"
    recipe = yaml.safe_load(CLOUDBUILD.read_text())
    text = CLOUDBUILD.read_text()
    assert __version__ not in text, "cloudbuild.yaml must read the version from reprflow/version.py"
    assert recipe["substitutions"]["_REPOSITORY"] == IMAGE_REPOSITORY
    script = recipe["steps"][0]["args"][-1]
    assert "reprflow/version.py" in script
    # run the recipe's tag step here: it must write exactly the two images the pipelines use
    namespace = runpy.run_path(str(REPO / "reprflow" / "version.py"))
    assert (namespace["IMAGE"], namespace["CUDA_IMAGE"]) == (IMAGE, CUDA_IMAGE)
    builds = {s["id"]: s["args"][-1] for s in recipe["steps"][1:]}
    assert "VARIANT=cpu" in builds["cpu"] and "image_cpu" in builds["cpu"] and "docker push" in builds["cpu"]
    assert "VARIANT=cuda" in builds["cuda"] and "image_cuda" in builds["cuda"] and "docker push" in builds["cuda"]


def _executors(tmp_path: Path) -> list[tuple[str, dict]]:
    """Every executor of every pipeline, compiled with CPU and with GPU profiles."""
    out = []
    for profile in ("cpu-small", "gpu-l4"):
        config = validate_config({"data": {"uri": "gs://b/x.csv"}, "resources": {"default": profile}})
        for name in PIPELINES:
            path = compile_pipeline(name, tmp_path / f"{name}-{profile}.yaml", config)
            spec = next(yaml.safe_load_all(path.read_text()))
            out += [(f"{name}/{profile}/{k}", e["container"]) for k, e in spec["deploymentSpec"]["executors"].items()]
    return out


def test_every_component_entry_point_exists_in_the_package(tmp_path: Path) -> None:
    """What KFP runs in the image: executor_main on the component's source, `--function_to_execute`
    naming a function of that source, whose reprflow imports resolve in the installed package."""
    checked = 0
    for where, container in _executors(tmp_path):
        assert container["image"] in (IMAGE, CUDA_IMAGE), f"{where}: image {container['image']}"
        command = container["command"]
        assert "python3 -m kfp.dsl.executor_main" in command[2] and "pip install" not in command[2], where
        function = container["args"][container["args"].index("--function_to_execute") + 1]
        tree = ast.parse(command[3])
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert function in defined, f"{where}: --function_to_execute {function} is not defined in its source"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reprflow"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{where}: {node.module}.{alias.name} does not exist"
                    checked += 1
    assert checked > 20
