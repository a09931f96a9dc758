"""The A/B preparation pipeline: fetch the control and treatment bundles -> check that they can be
compared, size the experiment, write the handoff (JSON, validated against its schema, and a page).
Built by a pure factory; compiled for a cluster or run locally (`reprflow ab-prep`)."""

from collections.abc import Mapping

from kfp import dsl
from kfp.dsl import Artifact

from reprflow.components.ab_prep.component import ab_prep
from reprflow.components.package.component import fetch_bundle
from reprflow.pipelines.placement import placement

PIPELINE_NAME = "reprflow-ab-prep"


def ab_prep_pipeline(resources: Mapping[str, str] | None = None) -> dsl.graph_component.GraphComponent:
    """The pipeline, each task placed by its stage's profile in `resources` (None: no placement)."""
    place = placement(resources)

    @dsl.pipeline(name=PIPELINE_NAME, description="Prepare an A/B experiment between two published versions: "
                  "comparability checks, sample size per arm, and a validated handoff for the experimentation platform.")
    def pipeline(control: str, treatment: str, config: dict, registry: str = "") -> Artifact:
        """`control`, `treatment`: version URIs, "current", or bundle folders (see package/fetch.py)."""
        arms = {role: place("resolve", fetch_bundle, reference=ref, registry=registry, config=config)
                for role, ref in (("control", control), ("treatment", treatment))}
        handoff = place("handoff", ab_prep, control=arms["control"].outputs["bundle"],
                        treatment=arms["treatment"].outputs["bundle"], control_uri=arms["control"].outputs["Output"],
                        treatment_uri=arms["treatment"].outputs["Output"], config=config)
        return handoff.outputs["handoff"]

    return pipeline
