"""tfmodels.vision: published parameter counts and a forward pass for every family."""

from __future__ import annotations

import numpy as np
import pytest

from tfmodels.vision import build_classifier


def trainable(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize(
    ("name", "shape", "classes", "expected"),
    [
        ("resnet50", (224, 224, 3), 1000, 25_557_032),  # torchvision / paper count
        ("vgg16", (224, 224, 3), 1000, 138_357_544),
        ("lenet", (32, 32, 1), 10, 61_706),
    ],
)
def test_published_parameter_counts(name, shape, classes, expected):
    assert trainable(build_classifier(name, shape, classes)) == expected


def test_resnet50_batch_norm_statistics_are_the_only_non_trainable_weights():
    model = build_classifier("resnet50", (224, 224, 3), 1000)
    assert model.count_params() - trainable(model) == 53_120


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("lenet", (28, 28, 1)),
        ("alexnet", (32, 32, 3)),
        ("vgg11", (32, 32, 3)),
        ("vgg16", (28, 28, 1)),
        ("inception", (32, 32, 3)),
        ("resnet20", (32, 32, 3)),
        ("resnet56", (32, 32, 1)),
        ("resnet18", (64, 64, 3)),
        ("inception", (96, 96, 3)),
    ],
)
def test_every_family_runs_a_forward_pass(name, shape):
    model = build_classifier(name, shape, 7, width=0.25 if "inception" in name else 1.0)
    x = np.random.default_rng(0).uniform(0, 255, size=(2, *shape)).astype("float32")
    probabilities = model(x, training=False).numpy()
    assert probabilities.shape == (2, 7)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.get_layer("logits").output.shape[-1] == 7


def test_depth_variants_differ_and_width_scales():
    small = trainable(build_classifier("resnet20", (32, 32, 3), 10))
    deep = trainable(build_classifier("resnet56", (32, 32, 3), 10))
    half = trainable(build_classifier("vgg11", (32, 32, 3), 10, width=0.5))
    full = trainable(build_classifier("vgg11", (32, 32, 3), 10))
    assert 260_000 < small < 280_000  # ResNet-20: 0.27M in the paper
    assert 840_000 < deep < 870_000  # ResNet-56: 0.85M
    assert half < full / 3


def test_bare_family_name_picks_depth_by_image_size():
    assert build_classifier("resnet", (32, 32, 3), 10).name == "resnet20"
    assert build_classifier("resnet", (64, 64, 3), 10).name == "resnet50"
    assert build_classifier("vgg", (32, 32, 3), 10).name == "vgg16"


@pytest.mark.parametrize("name", ["resnet21", "vgg12", "mobilenet", "lenet5"])
def test_unknown_names_and_depths_are_rejected(name):
    with pytest.raises(ValueError, match=r"(?i)depth|unknown model"):
        build_classifier(name, (32, 32, 3), 10)
