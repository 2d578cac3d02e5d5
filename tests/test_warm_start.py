"""`train.init_from`: a run starts from the weights an earlier run kept (the shared
`segmentation_run`, found by its MLflow run id in the real embedded store), and one whose
vocabulary or model sizes differ fails before training, naming what differs."""

import keras
import numpy as np
import pytest
from helpers import DATA, TINY_SEGMENTATION, copy_workdir

from pipelines.core.config import ConfigError
from pipelines.core.runner import load_task_config, run_pipeline

# The shared run's settings (the jieba lexicon included), one epoch, no export.
WARM = [*TINY_SEGMENTATION, "train.epochs=1", "export.enabled=false"]


class FirstWeights(keras.callbacks.Callback):
    """The model's weights as training begins (before the first step)."""

    def on_train_begin(self, logs=None):
        self.weights = [keras.ops.convert_to_numpy(v) for v in self.model.weights]


@pytest.mark.slow
def test_a_run_starts_from_a_kept_run_and_a_different_vocabulary_fails(
    segmentation_run, tmp_path, monkeypatch
):
    from mlflow.tracking import MlflowClient

    from pipelines.core.tracking import tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workdir = copy_workdir(segmentation_run, tmp_path / "w")  # new runs go to the copy
    client = MlflowClient(tracking_uri(workdir))
    experiment = client.get_experiment_by_name("segmentation")
    (source,) = client.search_runs(
        [experiment.experiment_id], "attributes.run_name = 'segmentation'"
    )
    source_id = source.info.run_id

    def run(*extra: str, callbacks=()):
        config = load_task_config("segmentation", None, [*WARM, *extra])
        return run_pipeline("segmentation", config, DATA, workdir, callbacks=callbacks)

    first = FirstWeights()
    result = run("run_name=warm", f"train.init_from={source_id}", callbacks=[first])
    kept = np.load(workdir / "state" / "segmentation" / "segmentation" / "model" / "weights.npz")
    assert len(first.weights) == len(kept.files)
    for key, value in zip(sorted(kept.files), first.weights, strict=True):
        np.testing.assert_array_equal(value, kept[key], err_msg=key)  # not a random start
    assert client.get_run(result.run_id).data.tags["init_from"] == source_id
    assert result.test_metrics["f1"] > 0.5  # one more epoch on trained weights, not from zero

    # Characters seen under 14 times dropped: another vocabulary, named line by line.
    with pytest.raises(
        ConfigError,
        match=rf"train.init_from={source_id}: the kept model's vocabularies .* "
        r"assets/chars.txt: (\d+) entries kept, (\d+) now; first difference at line \d+: '.+' "
        r"vs '.+'",
    ):
        run(
            "run_name=other-vocabulary",
            f"train.init_from={source_id}",
            "data.char_min_count=14",
            "data.lexicon=none",  # not an asset (and quicker to leave out)
        )


@pytest.mark.slow
def test_other_model_sizes_name_the_keys_that_differ(segmentation_run):
    """The kept folder itself as the source, into a model built with another model.units
    from the kept assets (no data read): the shapes and the model.* key in the error."""
    from pipelines.core.registry import get_task_class
    from pipelines.core.warm_start import warm_start

    kept = segmentation_run / "state" / "segmentation" / "segmentation" / "model"
    config = load_task_config("segmentation", kept / "config.yaml", ["model.units=16"])
    task = get_task_class("segmentation")(config, None)
    task.load_assets(kept / "assets")
    keras.backend.clear_session()  # layer names as a run builds them (set_up clears too)
    with pytest.raises(
        ConfigError,
        match=rf"train.init_from={kept}: the kept weights do not fit this run's model "
        r"\(model.\* keys that differ: model.units: 32 kept, 16 now; .+ has shape \(",
    ):
        warm_start(task, task.build_model(), str(kept), "segmentation", segmentation_run)
