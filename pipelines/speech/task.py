"""Speech recognition with CTC: WAV bytes in, transcript out.

WAV decoding (with resampling), log-mel features and SpecAugment are in the graph, the
model is a strided convolution front end under stacked bidirectional GRUs or LSTMs with
per-frame character logits (`tfmodels.speech`), trained by CTC; the export decodes with
beam search (`serving_default`) or greedily (`greedy`). Metrics (WER, CER, isolated-word
accuracy) are measured through the serving graph, so what is measured is what is served.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import keras
import tensorflow as tf

from pipelines.core.config import ConfigError
from pipelines.core.random_draws import map_with_seeds
from pipelines.core.task import (
    DEFAULT_SIGNATURE,
    Serving,
    Task,
    read_vocabulary,
    write_vocabulary,
)
from pipelines.core.textio import DataError
from pipelines.speech import serving
from pipelines.speech.audio import decode_batch, perturb
from pipelines.speech.config import SpeechConfig
from pipelines.speech.corpus import fsdd_training_recordings, read_splits
from pipelines.speech.fsdd import DigitJoiner
from pipelines.speech.manifest import Utterance
from pipelines.speech.metrics import isolated_accuracy, speech_scores, wer_of_speakers
from pipelines.speech.serving import GREEDY
from tfmodels.speech import (
    CTCModelSpec,
    CTCVocabulary,
    LogMelSpectrogram,
    build_ctc_model,
    spec_augment_from_config,
)


class SpeechTask(Task):
    text_output = "transcript"
    name = "speech"
    config_class = SpeechConfig
    default_monitor: ClassVar[str] = "val_wer"
    lower_is_better: ClassVar[tuple[str, ...]] = ("wer", "cer")
    predict_input = "audio"
    config: SpeechConfig

    def __init__(self, config: SpeechConfig, data_dir: Path | None):
        super().__init__(config, data_dir)
        self.utterances: dict[str, list[Utterance]] = {}
        self.isolated: list[Utterance] = []  # single-word test recordings (digit accuracy)
        self._manifests: list[Path] = []
        self.tokens: list[str] = []  # the characters; label id i + 1 is `tokens[i]`
        self.lexicon: list[str] = []  # the training transcripts' words
        self.vocabulary: CTCVocabulary | None = None
        self.features: LogMelSpectrogram | None = None
        self._last: dict[str, tuple[list[str], list[str]]] = {}  # split -> (refs, hyps)
        self._audio: dict[Path, bytes] = {}  # WAV bytes by path, each file read once

    # -- data -------------------------------------------------------------------------
    def prepare(self, workdir: Path) -> None:
        d = self.config.data
        self.utterances, self.isolated, self._manifests = read_splits(
            self.data_dir, d, self.config.train.seed
        )
        if not self.utterances["train"]:
            raise DataError(f"{self._manifests[0]}: no training utterances")
        self.tokens = sorted({c for u in self.utterances["train"] for c in u.transcript})
        self.lexicon = sorted({w for u in self.utterances["train"] for w in u.transcript.split()})
        self._set_components()
        seconds = sum(u.seconds for u in self.utterances["train"])
        counts = ", ".join(f"{k} {len(v)}" for k, v in self.utterances.items())
        print(
            f"[speech] {counts} utterances ({seconds / 3600:.2f} h of training audio); "
            f"{len(self.tokens)} characters",
            flush=True,
        )
        self._last = {}
        self._audio = {}

    def _set_components(self) -> None:
        m, d = self.config.model, self.config.data
        self.vocabulary = CTCVocabulary(self.tokens, unit="char", name="vocabulary")
        self.features = LogMelSpectrogram(
            d.sample_rate,
            m.frame_ms,
            m.step_ms,
            m.n_mels,
            normalize=m.utterance_norm,
            vtlp=m.vtlp if m.vtlp_domain == "features" else 0.0,
            seed=self.config.train.seed,
            cepstra=m.cepstra,
            name="log_mel",
        )

    def data_files(self) -> list[Path]:
        return list(self._manifests)

    def save_assets(self, folder: Path) -> list[Path]:
        """The character vocabulary (label id i + 1 is line i) and the training words."""
        return [
            write_vocabulary(folder / "characters.txt", self.tokens),
            write_vocabulary(folder / "words.txt", self.lexicon),
        ]

    def load_assets(self, folder: Path) -> None:
        self.tokens = read_vocabulary(folder / "characters.txt")
        words = folder / "words.txt"
        self.lexicon = read_vocabulary(words) if words.exists() else []
        if self.config.serving.snap_to_lexicon and not self.lexicon:
            raise DataError(
                f"{words}: serving.snap_to_lexicon needs the training words, "
                "which this kept model does not have"
            )
        self._set_components()

    def _decoded(self, files: tf.data.Dataset) -> tf.data.Dataset:
        """`(wav bytes, transcript)` -> `(waveform, length, transcript)`, unreadable
        audio left out (the manifest reader has already reported it)."""
        d = self.config.data

        def decode(wav, transcript):
            waveform, length, ok = decode_batch(wav[None], d.sample_rate, d.max_seconds)
            return waveform[0, : length[0]], length[0], ok[0], transcript

        ds = files.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.filter(lambda w, n, ok, t: ok).map(lambda w, n, ok, t: (w, n, t))

    def _batched(self, ds: tf.data.Dataset, batch: int) -> tf.data.Dataset:
        """Batches of `({waveform, lengths}, label ids)`, utterances of similar length
        together (the recurrent layers pay for every padded frame)."""
        second = self.config.data.sample_rate
        bounds = [int(s * second) for s in (1, 1.5, 2, 2.5, 3, 4, 5, 7, 10)]
        ds = ds.bucket_by_sequence_length(
            lambda w, n, t: n,
            bucket_boundaries=bounds,
            bucket_batch_sizes=[batch] * (len(bounds) + 1),
            padding_values=(0.0, 0, ""),
            pad_to_bucket_boundary=False,
            drop_remainder=False,
        )

        def to_inputs(waveform, lengths, transcripts):
            return {"waveform": waveform, "lengths": lengths}, self.vocabulary(transcripts)

        return ds.map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def _files(self, utts: Sequence[Utterance], training: bool) -> tf.data.Dataset:
        """`(wav bytes, transcript)` of `utts`, the bytes read once and kept in memory."""
        ds = tf.data.Dataset.from_tensor_slices(
            ([str(u.path) for u in utts], [u.transcript for u in utts])
        )
        ds = ds.map(
            lambda p, t: (tf.io.read_file(p), t), num_parallel_calls=tf.data.AUTOTUNE
        ).cache()
        if training:
            ds = ds.shuffle(
                min(self.config.data.shuffle_buffer, len(utts)),
                seed=self.config.train.seed,
                reshuffle_each_iteration=True,
            )
        return ds

    def _fresh_training(self) -> tf.data.Dataset:
        """New connected-digit combinations every pass (`data.fsdd_train` of them, and with
        `data.fsdd_isolated_train` every recording alone), as `(waveform, length,
        transcript)`."""
        d = self.config.data
        recordings, extra = fsdd_training_recordings(self.data_dir, d)
        joiner = DigitJoiner(
            recordings,
            d.sample_rate,
            max_digits=d.fsdd_max_digits,
            seed=[self.config.train.seed, 1000],
            alone=extra,
        )
        return joiner.dataset(d.fsdd_train, singles=d.fsdd_isolated_train).map(
            lambda w, t: (w, tf.shape(w, out_type=tf.int32)[0], t)
        )

    def check_config(self) -> None:
        m = self.config.model
        if not 0.0 <= m.speed < 0.5 or m.gain_db < 0:
            raise ConfigError(
                f"model.speed {m.speed} (0 to 0.5) / model.gain_db {m.gain_db} (0 or more)"
            )
        for key in ("tempo", "pitch", "vtlp"):
            if not 0.0 <= getattr(m, key) < 0.5:
                raise ConfigError(f"model.{key} {getattr(m, key)}: 0 (off) to below 0.5")
        if not 0.0 <= m.reverb_rt60 <= 2.0:
            raise ConfigError(f"model.reverb_rt60 {m.reverb_rt60}: 0 (off) to 2 seconds")

    def _waveform_vtlp(self) -> float:
        """`model.vtlp` where the input pipeline applies it (`vtlp_domain: waveform`)."""
        m = self.config.model
        return m.vtlp if m.vtlp_domain == "waveform" else 0.0

    def _perturbed(self, ds: tf.data.Dataset) -> tf.data.Dataset:
        """Training `(waveform, length, transcript)` with `model.speed`, `gain_db`,
        `noise_snr_db`, `tempo`, `pitch` and `vtlp` applied, new draws every epoch."""
        m = self.config.model

        def change(example, draw_seed):
            waveform = perturb(
                example[0],
                m.speed,
                m.gain_db,
                m.noise_snr_db,
                draw_seed,
                tempo=m.tempo,
                pitch=m.pitch,
                vtlp=self._waveform_vtlp(),
                reverb_rt60=m.reverb_rt60,
                sample_rate=self.config.data.sample_rate,
            )
            return waveform, tf.shape(waveform, out_type=example[1].dtype)[0], example[2]

        return map_with_seeds(ds, change, self.config.train.seed)

    def datasets(self, global_batch_size: int):
        d = self.config.data
        if d.fsdd and d.fsdd_fresh_train:
            train = self._fresh_training()
        else:
            train = self._decoded(self._files(self.utterances["train"], training=True))
        m = self.config.model
        warps = m.tempo or m.pitch or self._waveform_vtlp() or m.reverb_rt60
        if m.speed or m.gain_db or m.noise_snr_db or warps:
            train = self._perturbed(train)
        val = None
        if self.utterances["validation"]:
            val = self._batched(
                self._decoded(self._files(self.utterances["validation"], training=False)),
                global_batch_size,
            )
        return self._batched(train, global_batch_size), val

    # -- model ------------------------------------------------------------------------
    def build_model(self) -> keras.Model:
        m = self.config.model
        return build_ctc_model(
            CTCModelSpec.from_config(m, self.vocabulary.num_classes),
            self.features,
            spec_augment_from_config(m, seed=self.config.train.seed),
            name="speech_ctc",
        )

    def compile_args(self, model: keras.Model) -> dict[str, Any]:
        return {}  # `CTCModel.compute_loss`: CTC on its logits and lengths

    # -- serving ----------------------------------------------------------------------
    def signatures(self, model: keras.Model) -> dict[str, Serving]:
        return serving.signatures(self.config, model, self.vocabulary, self.lexicon)

    def warmup_inputs(self) -> dict[str, list[Any]]:
        return {"audio": self.audio_bytes(self.utterances["test"][:5])}

    def audio_bytes(self, utts: Sequence[Utterance]) -> list[bytes]:
        """The WAV bytes of `utts`, each file read once: validation transcribes every epoch."""
        for u in utts:
            if u.path not in self._audio:
                self._audio[u.path] = u.path.read_bytes()
        return [self._audio[u.path] for u in utts]

    # -- metrics ----------------------------------------------------------------------
    def transcribe(
        self, model: keras.Model, utts: Sequence[Utterance], signature: str = DEFAULT_SIGNATURE
    ) -> list[str]:
        audio = self.audio_bytes(utts)
        out: list[str] = []
        for result in self.serve_batches(
            model, {"audio": audio}, signature, batch_size=64, desc="transcribing"
        ):
            out += [t.decode("utf-8") for t in result["transcript"]]
        return out

    def evaluate(self, model: keras.Model, split: str) -> dict[str, float]:
        """WER, CER and sentence accuracy; on test also isolated-word accuracy and the WER
        of held-out speakers. Validation decodes greedily (cheaper, close to the beam)."""
        utts = self.utterances[split]
        hyps = self.transcribe(model, utts, GREEDY if split == "validation" else DEFAULT_SIGNATURE)
        refs = [u.transcript for u in utts]
        self._last[split] = (refs, hyps)
        scores = speech_scores(refs, hyps)
        if split == "test":
            if self.isolated:
                words = self.transcribe(model, self.isolated)
                scores["digit_accuracy"] = isolated_accuracy(
                    [u.transcript for u in self.isolated], words
                )
            speakers = [u.extra.get("speaker", "") for u in utts]
            held_out = wer_of_speakers(speakers, refs, hyps, set(self.config.data.test_speakers))
            if held_out is not None:
                scores["wer_held_out_speakers"] = held_out
        return scores

    def plots(self, model: keras.Model, out_dir: Path) -> list[Path]:
        """Log-mel spectrograms with the CTC posteriors under them, for a few test
        utterances, titled with the reference and the decoded text."""
        from pipelines.speech.plots import posteriors_png

        utts = self.utterances["test"][:4]
        if not utts:
            return []
        refs, hyps = self._last.get(
            "test", ([u.transcript for u in utts], self.transcribe(model, utts))
        )
        audio = tf.constant(self.audio_bytes(utts))
        d = self.config.data
        waveform, lengths, _ = decode_batch(audio, d.sample_rate, d.max_seconds)
        features, frames = self.features(waveform, lengths)
        out = model({"waveform": waveform, "lengths": lengths}, training=False)
        posteriors = tf.nn.softmax(out["logits"], axis=-1).numpy()
        return [
            posteriors_png(
                features.numpy(),
                frames.numpy(),
                posteriors,
                out["logit_lengths"].numpy(),
                ["<blank>", *self.tokens],
                refs[: len(utts)],
                hyps[: len(utts)],
                Path(out_dir) / "ctc_posteriors.png",
            )
        ]

    # -- batch prediction -------------------------------------------------------------
    @classmethod
    def request_from_lines(cls, lines: Sequence[str], base_dir: Path) -> dict[str, Any]:
        return serving.request_from_lines(lines, base_dir)
