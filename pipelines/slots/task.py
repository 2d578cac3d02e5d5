"""Slot filling with intent detection: a stacked BiLSTM over word and character features
shared by a BIO slot head (Viterbi-decoded to valid sequences) and an intent head.

Metrics are computed through the serving graph, so what is measured is what is exported.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from pipelines.core.plots import confusion_matrix_png
from pipelines.core.splits import hold_out
from pipelines.core.task import (
    DEFAULT_SIGNATURE,
    Serving,
    Task,
    read_vocabulary,
    write_vocabulary,
)
from pipelines.core.textio import DataError
from pipelines.slots import serving
from pipelines.slots.config import SlotsConfig
from pipelines.slots.features import OOV_ID, SubwordPieces, UtteranceFeatures, vocabulary_tokens
from pipelines.slots.metrics import format_report, joint_scores, per_type_scores, slot_scores
from pipelines.slots.pretrained import load_subword_encoder
from pipelines.slots.reader import Utterance, read_split
from pipelines.slots.serving import ENCODER_LAYERS
from tfmodels.losses import MultiLabelCrossentropy
from tfmodels.taggers.crf import CRFLoss
from tfmodels.taggers.joint_tagger import (
    JointTaggerSpec,
    build_joint_tagger,
    build_joint_tagger_ensemble,
    crf_layers,
    member_output_keys,
)
from tfmodels.taggers.subword_context import SubwordEncoderLayers, with_layer_mix

ENCODE_BATCH = 64  # utterances per pass of the pretrained encoder before training
CONTEXT_FEATURE = "context"  # the tagger's input of pretrained contextual word vectors


class SlotsTask(Task):
    name = "slots"
    config_class = SlotsConfig
    default_monitor: ClassVar[str] = "val_slot_f1"
    config: SlotsConfig

    def __init__(self, config: SlotsConfig, data_dir: Path | None):
        super().__init__(config, data_dir)
        self._split_dirs: dict[str, Path] = {}  # split -> its corpus folder
        self.utterances: dict[str, list[Utterance]] = {}
        self.test_split = "test"  # the split the test report reads ("validation" if none)
        # Vocabularies (the kept model's assets) and the graph layers built from them.
        self.words: list[str] = []
        self.chars: list[str] = []
        self.tags: list[str] = []  # "O" first
        self.intents: list[str] = []
        self.tag_index: dict[str, int] = {}
        self.intent_index: dict[str, int] = {}
        self.features: UtteranceFeatures | None = None
        # With `model.pretrained`: the frozen encoder, its input pieces, and its vectors of
        # the training and validation utterances (computed once, before training).
        self.pieces: SubwordPieces | None = None
        self.encoder_layers: SubwordEncoderLayers | None = None
        self._encoded: dict[str, tf.RaggedTensor] = {}
        # split -> (gold tags, predicted tags, gold intents, predicted intents) last evaluated
        self._last: dict[str, tuple[list[list[str]], list[list[str]], list[str], list[str]]] = {}

    # -- data -------------------------------------------------------------------------
    def corpus_dir(self) -> Path:
        """`data.corpus` under the data dir; a bare name is also looked for under `slots/`."""
        corpus = self.config.data.corpus
        for candidate in (self.data_dir / corpus, self.data_dir / "slots" / corpus):
            if candidate.is_dir():
                return candidate
        raise DataError(f"{self.data_dir / corpus}: no such corpus folder (data.corpus)")

    def data_files(self) -> list[Path]:
        return [
            folder / name
            for folder in self._split_dirs.values()
            for name in ("seq.in", "seq.out", "label")
        ]

    def prepare(self, workdir: Path) -> None:
        d = self.config.data
        root = self.corpus_dir()
        self._split_dirs = {"train": root / d.train}
        train = read_split(root / d.train)
        if d.validation and (root / d.validation).is_dir():
            self._split_dirs["validation"] = root / d.validation
            val = read_split(root / d.validation)
        else:
            train, val = hold_out(train, d.val_fraction, self.config.train.seed)
        self.test_split = "test"
        if d.test and (root / d.test).is_dir():
            self._split_dirs["test"] = root / d.test
            test = read_split(root / d.test)
        else:
            print(
                f"[slots] {root} has no '{d.test}' split: the test report is the validation split",
                flush=True,
            )
            self.test_split, test = "validation", val
        self.utterances = {"train": train, "validation": val, "test": test}
        self._check_tokenisation()
        self._build_vocabularies(train)
        self._set_components()
        if self.encoder_layers is not None:
            # Frozen: each utterance's vectors are computed once, not at every epoch.
            self._encoded = {
                split: self._encode(self.utterances[split], split)
                for split in ("train", "validation")
            }
        self._last = {}

    def _set_components(self) -> None:
        """The graph's feature layer (and the pretrained encoder) from the vocabularies."""
        d, m = self.config.data, self.config.model
        self.tag_index = {t: i for i, t in enumerate(self.tags)}
        self.intent_index = {t: i for i, t in enumerate(self.intents)}
        self.features = UtteranceFeatures(
            self.words,
            self.chars,
            d.lowercase,
            d.normalise_digits,
            d.max_word_chars,
            use_chars=m.use_chars,
        )
        self.encoder_layers, self.pieces, self._encoded = None, None, {}
        if m.pretrained:
            loaded = load_subword_encoder(m.pretrained, m.pretrained_layers)
            self.pieces = SubwordPieces(
                loaded.vocabulary, loaded.lowercase, loaded.max_pieces, name="subword_pieces"
            )
            self.encoder_layers = SubwordEncoderLayers(loaded.encoder, name="encoder_layers")

    def _check_tokenisation(self) -> None:
        """The graph's tokenizer must cut each line into exactly the reader's words."""
        for split, utts in self.utterances.items():
            graph = vocabulary_tokens([u.text for u in utts], False, False)
            for n, (u, toks) in enumerate(zip(utts, graph, strict=True), 1):
                if list(u.words) != toks:
                    where = self._split_dirs.get(split, self._split_dirs["train"]) / "seq.in"
                    raise DataError(
                        f"{where}:{n}: the graph tokenizer splits this line into "
                        f"{len(toks)} tokens, the reader into {len(u.words)}"
                    )

    def _build_vocabularies(self, train: list[Utterance]) -> None:
        d = self.config.data
        tokens = vocabulary_tokens([u.text for u in train], d.lowercase, d.normalise_digits)
        counts = collections.Counter(t for row in tokens for t in row)
        self.words = sorted(w for w, n in counts.items() if n >= d.word_min_count)
        self.chars = sorted({c for row in tokens for t in row for c in t})
        self.tags = ["O"] + sorted({t for u in train for t in u.tags} - {"O"})
        self.intents = sorted({i for u in train for i in self._intent_parts(u.intent)})

    def _encoder_inputs(self, tokens: tf.RaggedTensor) -> tf.Tensor:
        """Tokens `[B, (T)]` -> the frozen encoder's `[B, T, L, D]` layer vectors (T >= 1)."""
        return serving.encoder_inputs(tokens, self.pieces, self.encoder_layers)

    def _encode(self, utts: list[Utterance], split: str) -> tf.RaggedTensor:
        """`[N, (T), L, D]` float16 encoder vectors of each utterance's words."""

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def encode(text):
            tokens = self.features.tokenize(text)
            return self._encoder_inputs(tokens), tokens.row_lengths()

        # Similar lengths together: the encoder pays for every padded piece.
        order = sorted(range(len(utts)), key=lambda i: len(utts[i].words))
        rows: list[np.ndarray | None] = [None] * len(utts)
        for start in tqdm(
            range(0, len(order), ENCODE_BATCH),
            desc=f"encoding {split}",
            unit="batch",
            mininterval=5,
        ):
            batch = order[start : start + ENCODE_BATCH]
            vectors, lengths = encode(tf.constant([utts[i].text for i in batch]))
            vectors = vectors.numpy().astype(np.float16)
            for j, i in enumerate(batch):
                rows[i] = vectors[j, : int(lengths[j])]
        shape = (0, self.encoder_layers.num_layers, self.encoder_layers.dim)
        flat = np.concatenate([r for r in rows if r is not None] or [np.zeros(shape, np.float16)])
        return tf.RaggedTensor.from_row_lengths(flat, [len(r) for r in rows])

    def _intent_parts(self, intent: str) -> list[str]:
        """The labels the intent head learns in an utterance's intent: the single intents
        of a multi-intent label with `model.multi_intent`, else the label itself."""
        if self.config.model.multi_intent:
            return intent.split(self.config.data.intent_separator)
        return [intent]

    def _intent_targets(self, utts: list[Utterance]) -> tf.Tensor:
        """`[N]` class ids, or `[N, I]` multi-hot rows with `model.multi_intent`; intents
        unseen in training (validation only) count as class 0, or as no label."""
        if not self.config.model.multi_intent:
            return tf.constant([self.intent_index.get(u.intent, 0) for u in utts], tf.int32)
        rows = np.zeros((len(utts), len(self.intents)), np.float32)
        for n, u in enumerate(utts):
            for part in self._intent_parts(u.intent):
                if part in self.intent_index:
                    rows[n, self.intent_index[part]] = 1.0
        return tf.constant(rows)

    VOCABULARIES = ("words", "chars", "tags", "intents")

    def save_assets(self, folder: Path) -> list[Path]:
        """Word, character, slot-tag and intent vocabularies (the pretrained encoder, if
        any, is read again from `model.pretrained`)."""
        return [
            write_vocabulary(folder / f"{name}.txt", getattr(self, name))
            for name in self.VOCABULARIES
        ]

    def load_assets(self, folder: Path) -> None:
        for name in self.VOCABULARIES:
            setattr(self, name, read_vocabulary(folder / f"{name}.txt"))
        self._set_components()

    def _batch(self, text, tags, intent, training: bool, encoded=None):
        """A batch of raw lines and `-1`-padded tag ids (and the encoder's vectors, with
        `model.pretrained`) -> (inputs, targets, sample weights)."""
        inputs = self.features(self.features.tokenize(text))
        if encoded is not None:
            # Words are at least one column wide (a batch of empty lines still runs).
            extra = tf.shape(inputs["words"])[1] - tf.shape(encoded)[1]
            inputs[ENCODER_LAYERS] = tf.cast(
                tf.pad(encoded, [[0, 0], [0, extra], [0, 0], [0, 0]]), tf.float32
            )
        words = inputs["words"]
        p = self.config.data.word_dropout
        if training and p > 0:
            drop = tf.random.uniform(tf.shape(words)) < p
            inputs["words"] = tf.where(drop & (words > OOV_ID), OOV_ID, words)
        width = tf.shape(words)[1]
        tags = tf.pad(
            tags, [[0, 0], [0, tf.maximum(width - tf.shape(tags)[1], 0)]], constant_values=-1
        )[:, :width]
        # The CRF loss reads each sequence's length from the -1 padding.
        slot_targets = tags if self.config.model.crf else tf.maximum(tags, 0)
        slot_weights = tf.cast(tags >= 0, tf.float32)
        targets, weights = {}, {}
        for slot_key, intent_key in self._output_keys():
            targets[slot_key], targets[intent_key] = slot_targets, intent
            weights[slot_key] = slot_weights
            weights[intent_key] = tf.ones(tf.shape(intent)[:1], tf.float32)
        return inputs, targets, weights

    def _dataset(
        self,
        utts: list[Utterance],
        batch: int,
        training: bool,
        encoded: tf.RaggedTensor | None = None,
    ) -> tf.data.Dataset:
        texts = [u.text for u in utts]
        tags = [[self.tag_index.get(t, 0) for t in u.tags] for u in utts]
        intents = self._intent_targets(utts)
        extras = () if encoded is None else (encoded,)  # per-utterance encoder vectors

        # Tensors, not `from_generator`: no Python (and no GIL) in the input pipeline; a
        # pass over ATIS train takes half the time. Tags are padded with -1 and cut back
        # to each utterance's length.
        ragged = tf.ragged.constant(tags, dtype=tf.int32, ragged_rank=1, inner_shape=())
        ds = tf.data.Dataset.from_tensor_slices(
            (
                tf.constant(texts, tf.string),
                ragged.to_tensor(default_value=-1),
                ragged.row_lengths(),
                intents,
                *extras,
            )
        )
        ds = ds.map(lambda t, y, n, i, *e: (t, y[:n], i, *e)).cache()
        if training:
            ds = ds.shuffle(
                min(self.config.data.shuffle_buffer, len(utts)),
                seed=self.config.train.seed,
                reshuffle_each_iteration=True,
            )
        # Batches of similar lengths: the BiLSTM pays for every padded step.
        longest = max((len(u.words) for u in utts), default=1)
        bounds = [b for b in (6, 9, 12, 16, 24, 32, 48, 64) if b < longest] or [longest + 1]
        ds = ds.bucket_by_sequence_length(
            lambda t, y, i, *e: tf.shape(y)[0],
            bucket_boundaries=bounds,
            bucket_batch_sizes=[batch] * (len(bounds) + 1),
            padding_values=(
                "",
                -1,
                tf.zeros([], intents.dtype),
                *(tf.zeros([], e.dtype) for e in extras),
            ),
            drop_remainder=False,
        )
        ds = ds.map(
            lambda t, y, i, *e: self._batch(t, y, i, training, *e),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        return ds.prefetch(tf.data.AUTOTUNE)

    def datasets(self, global_batch_size: int):
        train = self._dataset(
            self.utterances["train"],
            global_batch_size,
            training=True,
            encoded=self._encoded.get("train"),
        )
        val = None
        if self.utterances["validation"]:
            val = self._dataset(
                self.utterances["validation"],
                global_batch_size,
                training=False,
                encoded=self._encoded.get("validation"),
            )
        # Bucketing hides the batch count (it varies a little with each shuffle): the
        # runner counts one pass and trains on a repeated stream.
        return train, val

    # -- model ------------------------------------------------------------------------
    def _spec(self) -> JointTaggerSpec:
        dense = {}
        if self.encoder_layers is not None:
            dense[CONTEXT_FEATURE] = self.encoder_layers.dim
        return JointTaggerSpec.from_config(
            self.config.model,
            num_tags=len(self.tags),
            num_intents=len(self.intents),
            word_vocab_size=self.features.word_vocab_size,
            char_vocab_size=self.features.char_vocab_size,
            dense_inputs=dense,
        )

    def build_model(self) -> keras.Model:
        if self.config.model.ensemble > 1:
            model = build_joint_tagger_ensemble(
                self._spec(), self.config.model.ensemble, name="slot_tagger"
            )
        else:
            model = build_joint_tagger(self._spec(), name="slot_tagger")
        if self.encoder_layers is None:
            return model
        return with_layer_mix(
            model,
            CONTEXT_FEATURE,
            self.encoder_layers.num_layers,
            self.encoder_layers.dim,
            ENCODER_LAYERS,
            name="slot_tagger_mix",
        )

    def _output_keys(self) -> list[tuple[str, str]]:
        """(slot output, intent output) of each ensemble member, or of the single model."""
        return member_output_keys(self._spec(), self.config.model.ensemble)

    def compile_args(self, model: keras.Model) -> dict[str, Any]:
        ce = keras.losses.SparseCategoricalCrossentropy
        crfs = crf_layers(model)
        loss, loss_weights, metrics = {}, {}, {}
        for i, (slot_key, intent_key) in enumerate(self._output_keys()):
            loss[slot_key] = (
                CRFLoss(crfs[i])
                if crfs
                else ce(from_logits=True, reduction="mean_with_sample_weight")
            )
            loss[intent_key] = (
                MultiLabelCrossentropy() if self.config.model.multi_intent else ce(from_logits=True)
            )
            loss_weights[slot_key] = 1.0
            loss_weights[intent_key] = self.config.model.intent_loss_weight
            metrics[slot_key] = [keras.metrics.SparseCategoricalAccuracy(name="tag_accuracy")]
            metrics[intent_key] = [
                keras.metrics.BinaryAccuracy(threshold=0.0, name="label_accuracy")
                if self.config.model.multi_intent
                else keras.metrics.SparseCategoricalAccuracy(name="class_accuracy")
            ]
        return {"loss": loss, "loss_weights": loss_weights, "weighted_metrics": metrics}

    # -- serving ----------------------------------------------------------------------
    def signatures(self, model: keras.Model) -> dict[str, Serving]:
        return serving.signatures(
            self.config,
            model,
            self.features,
            self.tags,
            self.intents,
            self._output_keys(),
            self.pieces,
            self.encoder_layers,
        )

    def warmup_inputs(self) -> dict[str, list[Any]]:
        return {"text": [u.text for u in self.utterances["test"][:5]]}

    def predict(self, model: keras.Model, texts: list[str]) -> tuple[list[list[str]], list[str]]:
        """Slot labels per token and the intent of each text, through the serving graph."""
        slots, intents = [], []
        for out in self.serve_batches(model, {"text": texts}, desc="tagging"):
            for row_tokens, row in zip(out["tokens"], out["slots"], strict=True):
                n = int(np.count_nonzero(row_tokens != b""))
                slots.append([t.decode("utf-8") for t in row[:n]])
            intents += [i.decode("utf-8") for i in out["intent"]]
        return slots, intents

    def evaluate(self, model: keras.Model, split: str) -> dict[str, float]:
        name = self.test_split if split == "test" else split
        utts = self.utterances[name]
        pred_tags, pred_intents = self.predict(model, [u.text for u in utts])
        for n, (u, p) in enumerate(zip(utts, pred_tags, strict=True), 1):
            if len(u.words) != len(p):
                raise RuntimeError(
                    f"{split} utterance {n}: {len(p)} labels for {len(u.words)} words"
                )
        gold_tags = [list(u.tags) for u in utts]
        gold_intents = [u.intent for u in utts]
        self._last[split] = (gold_tags, pred_tags, gold_intents, pred_intents)
        return joint_scores(gold_tags, pred_tags, gold_intents, pred_intents)

    def plots(self, model: keras.Model, out_dir: Path) -> list[Path]:
        """Intent confusion matrix PNG and per-slot-type report of the test split."""
        if "test" not in self._last:
            self.evaluate(model, "test")
        gold_tags, pred_tags, gold_intents, pred_intents = self._last["test"]
        out_dir.mkdir(parents=True, exist_ok=True)
        labels = sorted(set(gold_intents) | set(pred_intents))
        index = {label: i for i, label in enumerate(labels)}
        png = confusion_matrix_png(
            labels,
            [index[i] for i in gold_intents],
            [index[i] for i in pred_intents],
            out_dir / "intent_confusion.png",
            title=f"intent ({self.test_split} split)",
        )
        per_type = per_type_scores(gold_tags, pred_tags)
        report = out_dir / "slot_report.txt"
        report.write_text(
            format_report(per_type, slot_scores(gold_tags, pred_tags)), encoding="utf-8"
        )
        report_json = out_dir / "slot_report.json"
        report_json.write_text(json.dumps(per_type, indent=1), encoding="utf-8")
        return [png, report, report_json]

    # -- batch prediction -------------------------------------------------------------
    @classmethod
    def lines_from_response(
        cls,
        outputs: dict[str, np.ndarray],
        signature: str = DEFAULT_SIGNATURE,
        lines: Sequence[str] = (),
    ) -> list[str]:
        return serving.lines_from_response(outputs, signature, lines)
