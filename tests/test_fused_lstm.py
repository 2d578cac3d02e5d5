"""The fused serving kernel computes exactly what the trained Keras BiLSTM computes."""

import keras
import numpy as np

from tfmodels.taggers import EmbeddingSpec, TaggerSpec, build_recurrent_tagger
from tfmodels.taggers.fused_lstm import FusedBiLSTM, with_fused_lstms


def test_fused_model_matches_keras_on_masked_batches():
    keras.utils.set_random_seed(3)
    spec = TaggerSpec(
        4, [EmbeddingSpec("char", 50, 8, ("chars",))], {"extra": 3}, layers=2, units=6
    )
    model = build_recurrent_tagger(spec)
    for weight in model.weights:  # large weights: saturating gates, big cell states
        weight.assign(np.random.default_rng(0).normal(0, 1.5, weight.shape))
    fused = with_fused_lstms(model)
    assert sum(isinstance(layer, FusedBiLSTM) for layer in fused.layers) == 2
    chars = np.array([[3, 4, 5, 6, 0, 0], [7, 8, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]], "int32")
    extra = np.random.default_rng(1).normal(size=(3, 6, 3)).astype("float32")
    expected = model({"chars": chars, "extra": extra}).numpy()
    got = fused({"chars": chars, "extra": extra}).numpy()
    real = chars > 0
    np.testing.assert_allclose(got[real], expected[real], atol=1e-4)
    assert len(fused.weights) == len(model.weights)  # shared, not copied
