"""KFP component: ab-prep. Declaration only; the work is in reprflow.components.ab_prep.run."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Output

from reprflow.version import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ab_prep(
    control: Input[Artifact],
    treatment: Input[Artifact],
    control_uri: str,
    treatment_uri: str,
    config: dict,
    handoff: Output[Artifact],
    page: Output[HTML],
    markdown: Output[Markdown],
):
    """handoff.json + handoff.html + handoff.md in `handoff` (a directory); the page and summary for the KFP UI."""
    import shutil
    from pathlib import Path

    from reprflow.components.ab_prep.run import run_ab_prep
    from reprflow.components.common.stage import run_stage

    run_stage(
        lambda cfg: run_ab_prep(control.path, treatment.path, cfg, handoff.path, control_uri or None,
                                treatment_uri or None),
        config,
    )
    shutil.copyfile(Path(handoff.path) / "handoff.html", page.path)
    shutil.copyfile(Path(handoff.path) / "handoff.md", markdown.path)
