"""The speech parts composed as a serving graph (WAV bytes in, transcript out), exported by
the project's SavedModel writer and called after loading: a batch with corrupt, empty and
16 kHz elements answers for every element."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from pipelines.core.export import write_savedmodel
from pipelines.core.task import Serving
from pipelines.speech.audio import decode_batch
from pipelines.speech.wavfile import wav_bytes
from tfmodels.speech import (
    CTCModelSpec,
    CTCVocabulary,
    LogMelSpectrogram,
    SpecAugment,
    build_ctc_model,
    ctc_decode,
)


def test_exported_serving_graph_answers_every_element(tmp_path):
    vocab = CTCVocabulary(list("abc "), unit="char")
    spec = CTCModelSpec(
        num_classes=vocab.num_classes,
        num_features=40,
        conv_filters=(8,),
        time_strides=(2,),
        freq_strides=(2,),
        layers=1,
        units=16,
    )
    model = build_ctc_model(spec, LogMelSpectrogram(8000), SpecAugment(seed=0))

    def serve(wav: tf.Tensor) -> dict[str, tf.Tensor]:
        waveforms, lengths, ok = decode_batch(wav, 8000)
        out = model({"waveform": waveforms, "lengths": lengths}, training=False)
        best = ctc_decode(out["logits"], out["logit_lengths"], "beam_search", beam_width=4)
        return {
            "transcript": tf.where(ok, vocab.decode(best["ids"]), ""),
            "confidence": tf.where(ok, best["confidence"], 0.0),
            "ok": ok,
        }

    write_savedmodel(
        Serving(serve, {"wav": tf.TensorSpec([None], tf.string)}, resources=[model, vocab]),
        tmp_path / "model",
    )
    endpoint = tf.saved_model.load(str(tmp_path / "model")).signatures["serving_default"]
    good = wav_bytes(0.3 * np.sin(np.arange(8000) / 3.0), 8000)
    wide = wav_bytes(0.3 * np.sin(np.arange(16000) / 6.0), 16000)
    out = endpoint(wav=tf.constant([good, b"", b"RIFFjunk", wide]))
    np.testing.assert_array_equal(out["ok"], [True, False, False, True])
    assert out["transcript"].shape == (4,) and out["transcript"][1] == b""
    assert set(out["transcript"][0].numpy().decode()) <= set("abc ")
    confidence = out["confidence"].numpy()
    assert confidence[1] == confidence[2] == 0.0 and np.all((confidence >= 0) & (confidence <= 1))
    direct = serve(tf.constant([good]))
    assert out["transcript"][0] == direct["transcript"][0]
