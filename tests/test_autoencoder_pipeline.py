"""`tfpipe run autoencoder` for all six models on the bundled samples (one class normal):
what MLflow records, every signature of every export in a fresh process, the threshold
stored, applied and moved at re-export, batch prediction, and clear errors for bytes that
are not images and for configs that cannot train."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml
from helpers import DATA, b64, copy_workdir, fresh_signatures_of, tfpipe

from pipelines.autoencoder.metrics import auroc, threshold_at
from pipelines.autoencoder.task import AutoencoderTask
from pipelines.core.config import ConfigError
from pipelines.core.runner import load_task_config, run_pipeline
from tfmodels.autoencoders import MODEL_NAMES

pytestmark = pytest.mark.slow

NORMAL = "circle"
TINY = [
    f"data.normal_classes=[{NORMAL}]",
    "data.plot_images=4",
    "train.epochs=2",
    "train.batch_size=8",
    "train.verbose=0",
    "model.code_size=4",
    "model.hidden=[16]",
    "model.filters=[8, 8]",
    "serving.elbo_samples=2",
    "export.warmup_requests=2",
    "export.log_to_mlflow=false",
]
EXTRA = {
    "stacked": ["model.base=dense", "model.epochs_per_pair=1", "train.epochs=3"],
    "vae": ["model.kl_warmup_steps=4"],
    "denoising": ["model.noise_stddev=0.3"],
}
TEST_FILES = sorted((DATA / "images" / "test").rglob("*.*"))
SIGNATURES = ["decode", "encode", "reconstruct", "serving_default"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny run of each model, in one workdir (run name = model name)."""
    workdir = tmp_path_factory.mktemp("autoencoder-runs")
    results = {}
    for name in MODEL_NAMES:
        config = load_task_config(
            "autoencoder",
            None,
            [*TINY, *EXTRA.get(name, []), f"model.name={name}", f"run_name={name}"],
        )
        results[name] = run_pipeline("autoencoder", config, DATA, workdir)
    return workdir, results


def mlflow_runs(workdir):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("autoencoder")
    return client, {
        r.data.tags["mlflow.runName"]: r for r in client.search_runs([experiment.experiment_id])
    }


def kept_threshold(result, percentile: float = 95.0) -> float:
    scores = json.loads((result.model_dir / "assets" / "normal_scores.json").read_text())
    assert len(scores["scores"]) == 6  # the normal (circle) validation images
    return threshold_at(np.array(scores["scores"]), percentile)


def test_every_model_trains_and_mlflow_records_metrics_plots_and_phases(runs):
    workdir, results = runs
    client, by_name = mlflow_runs(workdir)
    assert sorted(by_name) == sorted(MODEL_NAMES)
    for name, run in by_name.items():
        metrics = run.data.metrics
        for key in (
            "test_auroc",
            "test_average_precision",
            "test_normal_flagged",
            "test_anomalous_flagged",
        ):
            assert 0.0 <= metrics[key] <= 1.0, (name, key)
        assert metrics["test_psnr"] > 0 and metrics["test_reconstruction_error"] > 0
        assert metrics["test_threshold"] == pytest.approx(kept_threshold(results[name]))
        assert "val_loss" in metrics and "val_psnr" in metrics
        plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert {
            "plots/reconstructions.png",
            "plots/latent_space.png",
            "plots/anomaly_scores.png",
            "plots/training_curves.png",
        } <= plots, name
    vae = by_name["vae"]
    assert vae.data.metrics["test_negative_elbo"] > 0 and "val_kl" in vae.data.metrics
    plots = {a.path for a in client.list_artifacts(vae.info.run_id, "plots")}
    assert {"plots/vae_samples.png", "plots/vae_interpolation.png"} <= plots
    denoising = by_name["denoising"].data.metrics
    assert denoising["test_noisy_psnr"] > 0 and denoising["test_denoised_psnr"] > 0
    assert "sparsity_penalty" in by_name["sparse"].data.metrics
    phases = client.get_metric_history(by_name["stacked"].info.run_id, "phase")
    assert [m.value for m in sorted(phases, key=lambda m: m.step)] == [0.0, 1.0, 2.0]


def test_every_signature_of_every_export_answers_in_a_fresh_process(runs, tmp_path):
    """The threshold each export applies is the one kept with its model, and the served
    scores give the AUROC the run recorded."""
    workdir, results = runs
    _, by_name = mlflow_runs(workdir)
    request = {"image_bytes": [b64(p.read_bytes()) for p in TEST_FILES]}
    codes = {"code": [[0.0] * 4, [0.5, -1.0, 1.5, 0.0]]}
    jobs = [
        (
            results[name].export_dir,
            {
                "serving_default": request,
                "reconstruct": request,
                "encode": request,
                "decode": codes,
            },
        )
        for name in MODEL_NAMES
    ]
    anomalous = np.array([p.parent.name != NORMAL for p in TEST_FILES])
    count = len(TEST_FILES)
    for name, out in zip(MODEL_NAMES, fresh_signatures_of(jobs, tmp_path), strict=True):
        assert out["signatures"] == SIGNATURES, name
        assert out["inputs"] == {
            "decode": ["code"],
            "encode": ["image_bytes"],
            "reconstruct": ["image_bytes"],
            "serving_default": ["image_bytes"],
        }
        assert sorted(out["warmup"]) == sorted(SIGNATURES * 2)
        default = out["calls"]["serving_default"]
        scores = np.array(default["anomaly_score"]["value"])
        threshold = kept_threshold(results[name])
        assert default["threshold"]["value"] == pytest.approx([threshold] * count)
        assert default["is_anomaly"]["value"] == [bool(s > threshold) for s in scores]
        assert auroc(scores, anomalous) == pytest.approx(
            by_name[name].data.metrics["test_auroc"], abs=1e-6
        )
        assert default["reconstruction"]["shape"] == [count]
        assert all(png[1:4] == "PNG" for png in default["reconstruction"]["value"])
        assert default["reconstruction_error"]["shape"] == [count]
        assert out["calls"]["reconstruct"]["pixels"]["shape"] == [count, 32, 32, 3]
        assert out["calls"]["encode"]["code"]["shape"] == [count, 4]
        assert ("code_log_variance" in out["calls"]["encode"]) == (name == "vae")
        decoded = out["calls"]["decode"]["image"]
        assert decoded["shape"] == [2] and decoded["value"][0] != decoded["value"][1]


def test_threshold_is_moved_at_reexport(runs, tmp_path):
    """`tfpipe export --set serving.threshold=...`: the new version flags by it, without
    the data; the version before is unchanged."""
    workdir = copy_workdir(runs[0], tmp_path / "w")
    proc = tfpipe(
        "export",
        "autoencoder",
        "--run",
        "conv",
        "--workdir",
        str(workdir),
        "--set",
        "serving.threshold=0.0",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    export = workdir / "exports" / "autoencoder" / str(len(MODEL_NAMES) + 1)
    meta = json.loads((export / "assets.extra" / "tfpipelines.json").read_text())
    assert meta["serving"]["threshold"] == 0.0
    data = tf.constant([p.read_bytes() for p in TEST_FILES[:6]])
    new = tf.saved_model.load(str(export)).signatures["serving_default"](image_bytes=data)
    assert new["threshold"].numpy().tolist() == [0.0] * 6
    assert new["is_anomaly"].numpy().all()  # every error is above 0
    old = tf.saved_model.load(str(runs[1]["conv"].export_dir)).signatures["serving_default"]
    old = old(image_bytes=data)
    np.testing.assert_allclose(new["anomaly_score"], old["anomaly_score"], rtol=1e-6)
    assert old["threshold"].numpy()[0] == pytest.approx(kept_threshold(runs[1]["conv"]))


def test_kept_model_remembers_the_score_its_threshold_was_set_by(runs, tmp_path):
    """The threshold is a percentile of scores of one kind: a re-export scores the same way
    (relative error by default); a model kept before `model.anomaly_score` existed, whose
    scores say no kind, scores by the plain error it was calibrated with; the detail's power
    is kept too (in the kept config)."""
    from pipelines.core.trained_model import CONFIG, load_trained_model

    folder = Path(shutil.copytree(runs[1]["conv"].model_dir, tmp_path / "conv"))
    kept = folder / "assets" / "normal_scores.json"
    scores = json.loads(kept.read_text())
    config = yaml.safe_load((folder / CONFIG).read_text())
    assert scores["anomaly_score"] == "relative_error" and config["model"]["detail_power"] == 1.0
    _, model, _ = load_trained_model(AutoencoderTask, folder)
    assert model.anomaly_score == "relative_error" and model.detail_power == 1.0
    config["model"]["detail_power"] = 0.5
    (folder / CONFIG).write_text(yaml.safe_dump(config))
    _, model, _ = load_trained_model(AutoencoderTask, folder)
    assert model.detail_power == 0.5
    kept.write_text(json.dumps({"scores": scores["scores"]}))
    task, model, _ = load_trained_model(AutoencoderTask, folder)
    assert task.config.model.anomaly_score == model.anomaly_score == "error"
    pixels = np.random.default_rng(0).uniform(size=(3, 32, 32, 3)).astype(np.float32)
    scored = model.score(pixels)
    np.testing.assert_array_equal(scored["anomaly_score"], scored["reconstruction_error"])


def test_predict_writes_path_score_and_flag_per_image(runs, tmp_path):
    workdir, results = runs
    listing = tmp_path / "images.txt"
    listing.write_text("".join(f"{p}\n" for p in TEST_FILES[:5]))
    out = tmp_path / "out.tsv"
    proc = tfpipe(
        "predict",
        "autoencoder",
        "--workdir",
        str(workdir),
        "--input",
        str(listing),
        "--output",
        str(out),
        "--export",
        str(results["vae"].export_dir),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    assert [r[0] for r in rows] == [str(p) for p in TEST_FILES[:5]]
    threshold = kept_threshold(results["vae"])
    for _, score, flag in rows:
        assert flag == str(int(float(score) > threshold))


def test_bytes_that_are_not_images_fail_the_request_clearly(runs):
    png = TEST_FILES[0].read_bytes()
    signature = tf.saved_model.load(str(runs[1]["conv"].export_dir)).signatures["encode"]
    assert signature(image_bytes=tf.constant([png]))["code"].shape == (1, 4)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"image_bytes: element\(s\) \[1\] are not JPEG, PNG, GIF or BMP",
    ):
        signature(image_bytes=tf.constant([png, b"<html>not an image</html>"]))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.normal_classes=[circle, hexagon]"], "unknown class(es) hexagon"),
        (
            ["model.name=stacked", "train.epochs=4", "model.epochs_per_pair=2"],
            "leaves no epoch for fine-tuning",
        ),
        (["model.name=sparse", "model.sparsity=l2"], "model.sparsity: 'l2' is not one of"),
    ],
)
def test_configs_that_cannot_train_fail_before_training(overrides, message, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(message)):
        task = AutoencoderTask(load_task_config("autoencoder", None, overrides), DATA)
        task.prepare(tmp_path)
