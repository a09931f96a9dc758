"""KFP component: ingest. Declaration only; the work is in reprflow.components.ingest.ingest."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from reprflow.version import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(
    data_uri: str,
    config: dict,
    interactions: Output[Dataset],
    items: Output[Dataset],
    customers: Output[Dataset],
    base_uris: list = [],
) -> dict:
    """Validate and clean the interactions of `base_uris` then `data_uri` (files, folders or gs://
    prefixes); returns dataset statistics and the inputs read (URIs, sizes, checksums, generations)."""
    import time

    from reprflow.components.common.stage import run_stage
    from reprflow.components.ingest.ingest import ingest as read_clean, write_outputs

    def work(cfg: dict) -> dict:
        started = time.perf_counter()
        result = read_clean([*base_uris, data_uri], cfg["data"]["min_item_count"], cfg["data"]["max_rows"] or None)
        write_outputs(result, interactions.path, items.path, customers.path)
        return {**result.stats, "inputs": result.inputs, "duration_s": time.perf_counter() - started}

    return run_stage(work, config)
