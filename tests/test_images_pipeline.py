"""`tfpipe run images` end to end on the bundled samples: MLflow record, plots, an export
answering real JPEG and PNG bytes in a fresh process, batch prediction and comparison."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import (
    DATA,
    b64,
    copy_workdir,
    fresh_signatures,
    fresh_signatures_of,
    set_args,
    subprocess_env,
    tfpipe,
)

from pipelines.images.task import ImagesTask
from tfmodels.losses import SmoothedSparseCategoricalCrossentropy

pytestmark = pytest.mark.slow

EPOCHS = 30
TINY_IMAGES = [
    "model.name=lenet",
    f"train.epochs={EPOCHS}",
    "train.batch_size=8",
    "train.learning_rate=0.003",
    "train.schedule.name=exponential",
    "train.schedule.decay_steps=100",
    "train.schedule.decay_rate=0.5",
    "train.schedule.warmup_steps=12",
    "train.verbose=2",
    "data.explain_images=4",
    "export.warmup_requests=2",
]

FRESH_CHECK = r"""
import io, json, sys
from pathlib import Path
import numpy as np
import tensorflow as tf
from PIL import Image

export, test_dir = sys.argv[1], Path(sys.argv[2])
signature = tf.saved_model.load(export).signatures["serving_default"]
jpeg = next(test_dir.rglob("*.jpg")).read_bytes()
png = next(test_dir.rglob("*.png")).read_bytes()
buffer = io.BytesIO()
Image.open(io.BytesIO(jpeg)).convert("L").resize((57, 41)).save(buffer, format="PNG")
grey_odd_size = buffer.getvalue()
out = signature(image_bytes=tf.constant([jpeg, png, grey_odd_size]))
files = sorted(test_dir.rglob("*.*"))
labels = [f.parent.name for f in files]
predicted = signature(image_bytes=tf.constant([f.read_bytes() for f in files]))["label"]
accuracy = float(np.mean([p.decode() == t for p, t in zip(predicted.numpy(), labels)]))
print(json.dumps({
    "inputs": {k: v.dtype.name for k, v in signature.structured_input_signature[1].items()},
    "outputs": {k: [v.dtype.name, v.shape.as_list()] for k, v in out.items()},
    "label": [v.decode() for v in out["label"].numpy()],
    "probability": out["probability"].numpy().tolist(),
    "top_k_probabilities": out["top_k_probabilities"].numpy().tolist(),
    "top_k_labels": [[v.decode() for v in row] for row in out["top_k_labels"].numpy()],
    "accuracy": accuracy,
    "project_imported": any(m.split(".")[0] in ("pipelines", "tfmodels") for m in sys.modules),
}))
"""
CLASSES = sorted(p.name for p in (DATA / "images" / "train").iterdir())


@pytest.fixture(scope="module")
def images_run(tmp_path_factory):
    """One real `tfpipe run images` with LeNet on the bundled samples."""
    workdir = tmp_path_factory.mktemp("images-run")
    proc = tfpipe("run", "images", "--workdir", str(workdir), *set_args(TINY_IMAGES))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return workdir, proc.stdout


def mlflow_run(workdir):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("images")
    (run,) = client.search_runs([experiment.experiment_id])
    return client, run


def test_run_learns_the_samples_and_tracks_everything(images_run):
    workdir, stdout = images_run
    client, run = mlflow_run(workdir)
    assert run.data.params["model.name"] == "lenet"
    assert run.data.metrics["test_accuracy"] > 0.6  # 4 classes: chance is 0.25
    rates = [
        m.value
        for m in sorted(
            client.get_metric_history(run.info.run_id, "learning_rate"), key=lambda m: m.step
        )
    ]
    assert len(rates) == EPOCHS
    # Exponential decay after the one-epoch warm-up: 0.003 * 0.5 ** (steps / 100).
    assert rates[0] == pytest.approx(0.003 * 0.5 ** (0 / 100), rel=0.05)
    assert rates[-1] == pytest.approx(0.003 * 0.5 ** ((EPOCHS - 1) * 12 / 100), rel=0.05)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert len(client.get_metric_history(run.info.run_id, "val_accuracy")) == EPOCHS
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {
        "plots/explanations.png",
        "plots/confusion_matrix.png",
        "plots/misclassified.png",
        "plots/training_curves.png",
    } <= plots
    assert "test_accuracy" in stdout


def test_explanation_grid_is_a_real_image(images_run):
    from PIL import Image

    workdir, _ = images_run
    (png,) = workdir.glob("state/images/*/plots/explanations.png")
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[0] > 4 * 150 and pixels.shape[1] >= 450  # 4 rows x 3 panels
    assert pixels.std() > 20


def test_export_answers_jpeg_and_png_in_a_fresh_process(images_run, tmp_path):
    workdir, _ = images_run
    _, run = mlflow_run(workdir)
    export = workdir / "exports" / "images" / "1"
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_CHECK, str(export), str(DATA / "images" / "test")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["project_imported"] is False
    assert result["inputs"] == {"image_bytes": "string"}
    assert result["outputs"]["label"] == ["string", [3]]
    assert result["outputs"]["top_k_labels"] == ["string", [3, 4]]  # top 5, 4 classes
    assert set(result["label"]) <= set(CLASSES)
    for p, top_p, top_labels, label in zip(
        result["probability"],
        result["top_k_probabilities"],
        result["top_k_labels"],
        result["label"],
        strict=True,
    ):
        assert top_p == sorted(top_p, reverse=True) and top_p[0] == p
        assert abs(sum(top_p) - 1) < 1e-3  # all classes listed: they sum to one
        assert top_labels[0] == label and sorted(top_labels) == CLASSES
    # The export behaves exactly as measured in training.
    assert abs(result["accuracy"] - run.data.metrics["test_accuracy"]) < 1e-6


def test_predict_and_compare_commands(images_run, tmp_path):
    workdir, _ = images_run
    images = sorted((DATA / "images" / "test").rglob("*.*"))[:5]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in images) + "\n")
    out = tmp_path / "out.tsv"
    proc = tfpipe(
        "predict",
        "images",
        "--workdir",
        str(workdir),
        "--input",
        str(listing),
        "--output",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = out.read_text().splitlines()
    assert len(lines) == 5
    for line in lines:
        label, probability = line.split("\t")
        assert label in CLASSES and 0 < float(probability) <= 1

    plot = tmp_path / "compare.png"
    proc = tfpipe("compare", "images", "--workdir", str(workdir), "--plot", str(plot))
    assert proc.returncode == 0, proc.stderr[-3000:]
    header, rule, row, plot_line = proc.stdout.splitlines()
    # One run: no param differs; the figures the runner logged.
    assert header.split() == [
        "run",
        "test_accuracy",
        "params",
        "epochs_run",
        "train_seconds",
        "train_examples_per_second",
    ]
    assert row.split()[0] == "images"
    _, run = mlflow_run(workdir)
    assert float(row.split()[1]) == pytest.approx(run.data.metrics["test_accuracy"], abs=1e-4)
    assert plot_line == f"plot of test_accuracy against training time: {plot}"
    assert plot.stat().st_size > 5000


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "inception", "resnet20"])
def test_every_family_trains_on_the_samples(name, tmp_path):
    """Besides LeNet (end to end above): one epoch of each family, evaluated via serving."""
    task = ImagesTask(ImagesTask.config_class(), DATA)
    task.config.model.name = name
    task.config.model.width = 0.25
    task.config.model.label_smoothing = 0.1 if name == "resnet20" else 0.0
    task.prepare(tmp_path)
    train, _ = task.datasets(32)
    model = task.build_model()
    args = task.compile_args(model)
    assert isinstance(args["loss"], SmoothedSparseCategoricalCrossentropy) == (name == "resnet20")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), **args)
    history = model.fit(train, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    metrics = task.evaluate(model, "test")
    assert 0 <= metrics["accuracy"] <= 1
    assert len(task.predict_split(model, "test")[0]) == 32


def test_grey_model_serves_colour_images_and_colour_model_serves_grey(tmp_path):
    """The serving graph converts channels: a grey model takes RGB JPEGs and vice versa."""
    import io

    import tensorflow as tf
    from PIL import Image

    jpeg = next((DATA / "images" / "test").rglob("*.jpg")).read_bytes()
    buffer = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert("L").save(buffer, format="PNG")
    grey_png = buffer.getvalue()
    for channels in (1, 3):
        task = ImagesTask(ImagesTask.config_class(), DATA)
        task.config.model.name = "lenet"
        task.config.data.channels = channels
        task.prepare(tmp_path)
        model = task.build_model()
        assert model.input_shape == (None, 32, 32, channels)
        out = task.serving_function(model)[0](tf.constant([jpeg, grey_png]))
        assert out["label"].shape == (2,)
        assert np.all(out["probability"].numpy() > 0)


def test_flip_test_time_augmentation_averages_image_and_mirror(tmp_path):
    """`serving.tta_flip`: the serving graph's probabilities are the mean of the model's on
    the image and on its mirror image (and differ from the image's alone)."""
    import tensorflow as tf

    from pipelines.image_input.reader import decode_image

    jpeg = next((DATA / "images" / "test").rglob("*.jpg")).read_bytes()
    task = ImagesTask(ImagesTask.config_class(), DATA)
    task.config.model.name = "lenet"
    task.config.serving.tta_flip = True
    task.prepare(tmp_path)
    model = task.build_model()
    pixels = tf.cast(
        decode_image(tf.constant(jpeg), task.image_size, task.channels)[None], tf.float32
    )
    plain = model(pixels, training=False).numpy()[0]
    mirrored = model(tf.image.flip_left_right(pixels), training=False).numpy()[0]
    out = task.serving_function(model)[0](tf.constant([jpeg]))
    expected = (plain + mirrored) / 2
    assert int(out["class_id"][0]) == int(expected.argmax())
    assert float(out["probability"][0]) == pytest.approx(float(expected.max()), abs=1e-5)
    assert not np.allclose(plain, mirrored, atol=1e-4)


def test_two_signatures_are_exported_warmed_up_and_answer(images_run, tmp_path):
    """`serving_default` and `embedding` in one export: warm-up requests for each, both
    answer in a fresh process, `tfpipe predict --signature embedding` writes JSON lines."""
    workdir, _ = images_run
    export = workdir / "exports" / "images" / "1"
    jpeg = next((DATA / "images" / "test").rglob("*.jpg")).read_bytes()
    png = next((DATA / "images" / "test").rglob("*.png")).read_bytes()
    request = {"image_bytes": [b64(jpeg), b64(png)]}
    result = fresh_signatures(export, {"serving_default": request, "embedding": request}, tmp_path)
    assert result["signatures"] == ["embedding", "serving_default"]
    assert result["inputs"] == {"embedding": ["image_bytes"], "serving_default": ["image_bytes"]}
    assert sorted(result["warmup"]) == ["embedding"] * 2 + ["serving_default"] * 2
    embedding = result["calls"]["embedding"]["embedding"]
    assert embedding["shape"][0] == 2 and embedding["shape"][1] > 8
    assert embedding["value"][0] != embedding["value"][1]

    listing = tmp_path / "list.txt"
    images = sorted((DATA / "images" / "test").rglob("*.*"))[:3]
    listing.write_text("\n".join(str(p) for p in images) + "\n")
    out = tmp_path / "embeddings.jsonl"
    proc = tfpipe(
        "predict",
        "images",
        "--workdir",
        str(workdir),
        "--input",
        str(listing),
        "--output",
        str(out),
        "--export",
        str(export),
        "--signature",
        "embedding",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and len(rows[0]["embedding"]) == embedding["shape"][1]
    wrong = tfpipe(
        "predict",
        "images",
        "--workdir",
        str(workdir),
        "--input",
        str(listing),
        "--output",
        str(out),
        "--export",
        str(export),
        "--signature",
        "nope",
    )
    assert wrong.returncode == 2 and "has no signature 'nope'" in wrong.stderr


def test_reexport_from_the_kept_model_folder_with_fewer_labels(images_run, tmp_path):
    """`tfpipe export --run FOLDER --set serving.top_k=2`: two labels per image, the same
    best label as the version the run exported."""
    workdir = copy_workdir(images_run[0], tmp_path / "w")
    kept = workdir / "state" / "images" / "images" / "model"
    proc = tfpipe(
        "export",
        "images",
        "--run",
        str(kept),
        "--workdir",
        str(workdir),
        "--set",
        "serving.top_k=2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    images = sorted((DATA / "images" / "test").rglob("*.*"))[:6]
    request = {"serving_default": {"image_bytes": [b64(p.read_bytes()) for p in images]}}
    new, old = fresh_signatures_of(
        [
            (workdir / "exports" / "images" / "2", request),
            (workdir / "exports" / "images" / "1", request),
        ],
        tmp_path,
    )
    new, old = new["calls"]["serving_default"], old["calls"]["serving_default"]
    assert new["top_k_labels"]["shape"] == [6, 2] and old["top_k_labels"]["shape"] == [6, 4]
    assert new["label"]["value"] == old["label"]["value"]
    assert new["probability"]["value"] == pytest.approx(old["probability"]["value"], abs=1e-6)
