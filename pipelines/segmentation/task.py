"""Chinese word segmentation task: B/M/E/S tagging of characters with a stacked BiLSTM,
Viterbi decoding constrained to valid tag sequences, words joined inside the graph."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any, ClassVar

import keras
import tensorflow as tf
from tqdm import tqdm

from pipelines.core.splits import hold_out
from pipelines.core.task import (
    Serving,
    Task,
    read_vocabulary,
    write_vocabulary,
)
from pipelines.core.textio import DataError
from pipelines.segmentation import serving
from pipelines.segmentation.config import SegmentationConfig
from pipelines.segmentation.lexicon import load_lexicon
from pipelines.segmentation.metrics import word_prf
from pipelines.segmentation.reader import read_segmented, split_clauses
from tfmodels.taggers import (
    TaggerSpec,
    build_recurrent_tagger,
)
from tfmodels.text.chinese import (
    SegmentationPreprocessor,
    bigrams_of,
    bmes_tags,
    split_units,
)


class SegmentationTask(Task):
    text_output = "segmented"
    name = "segmentation"
    config_class = SegmentationConfig
    default_monitor: ClassVar[str] = "val_f1"
    config: SegmentationConfig

    def __init__(self, config: SegmentationConfig, data_dir: Path | None):
        super().__init__(config, data_dir)
        self.sentences: dict[str, list[list[str]]] = {}  # split -> sentences of words
        self.chars: list[str] = []
        self.bigrams: list[str] = []
        self.lexicon: dict[str, float] = {}  # word -> weight, the lexicon features'
        self.preprocessor: SegmentationPreprocessor | None = None

    # -- data -------------------------------------------------------------------------
    def _path(self, relative: str) -> Path:
        return self.data_dir / relative

    def data_files(self) -> list[Path]:
        d = self.config.data
        return [self._path(p) for p in (d.train, d.test, d.validation) if p]

    def prepare(self, workdir: Path) -> None:
        d = self.config.data
        train = read_segmented(self._path(d.train))
        if not train:
            raise DataError(f"{self._path(d.train)}: no sentences")
        if d.validation:
            val = read_segmented(self._path(d.validation))
        else:
            train, val = hold_out(train, d.val_fraction, self.config.train.seed)
        self.sentences = {
            "train": train,
            "validation": val,
            "test": read_segmented(self._path(d.test)),
        }
        self._build_vocabularies(train)
        self._set_preprocessor(load_lexicon(d.lexicon, self.data_dir, d.max_word))

    def _set_preprocessor(self, lexicon: dict[str, float]) -> None:
        self.lexicon = lexicon
        self.preprocessor = SegmentationPreprocessor(
            self.chars,
            self.bigrams if self.config.model.use_bigrams else (),
            lexicon,
            max_word=self.config.data.max_word,
        )

    def _units(self, sentences: list[list[str]]) -> list[list[str]]:
        """Normalised units of each sentence, as the graph splits them (for vocabularies)."""
        out = []
        for start in tqdm(
            range(0, len(sentences), 1024), desc="vocabulary", unit="batch", leave=False
        ):
            batch = ["".join(s) for s in sentences[start : start + 1024]]
            _, norm = split_units(tf.constant(batch), self.config.data.normalise)
            out += [[u.decode() for u in row] for row in norm.to_list()]
        return out

    def _build_vocabularies(self, train: list[list[str]]) -> None:
        d = self.config.data
        units = self._units(train)
        char_counts = collections.Counter(u for row in units for u in row)
        self.chars = sorted(c for c, n in char_counts.items() if n >= d.char_min_count)
        bigram_counts = collections.Counter(b for row in units for b in bigrams_of(row))
        self.bigrams = sorted(b for b, n in bigram_counts.items() if n >= d.bigram_min_count)

    def save_assets(self, folder: Path) -> list[Path]:
        """Vocabularies; the lexicon too when it came from a file of the user's (jieba's
        ships with the jieba package)."""
        paths = [
            write_vocabulary(folder / "chars.txt", self.chars),
            write_vocabulary(folder / "bigrams.txt", self.bigrams),
        ]
        if self._lexicon_from_file():
            paths.append(
                write_vocabulary(
                    folder / "lexicon.tsv", [f"{w}\t{v!r}" for w, v in self.lexicon.items()]
                )
            )
        return paths

    def load_assets(self, folder: Path) -> None:
        self.chars = read_vocabulary(folder / "chars.txt")
        self.bigrams = read_vocabulary(folder / "bigrams.txt")
        if self._lexicon_from_file():
            rows = (line.split("\t") for line in read_vocabulary(folder / "lexicon.tsv"))
            lexicon = {word: float(weight) for word, weight in rows}
        else:
            lexicon = load_lexicon(self.config.data.lexicon, Path("."), self.config.data.max_word)
        self._set_preprocessor(lexicon)

    def _lexicon_from_file(self) -> bool:
        return self.config.data.lexicon not in ("", "none", "jieba")

    def _example(self, line: tf.Tensor):
        """One sentence `"w1 w2 ..."` -> (features of 1 row, tags, weights)."""
        words = tf.strings.split(line)
        _, word_units = split_units(words, self.config.data.normalise)
        tags = bmes_tags(word_units).flat_values
        units = tf.RaggedTensor.from_row_lengths(
            word_units.flat_values, tf.shape(tags, out_type=tf.int64)
        )
        features = {k: v[0] for k, v in self.preprocessor(units).items()}
        return features, tags, tf.ones_like(tags, tf.float32)

    def _forget_bigrams(self, features, tags, weights):
        """Replace a share of bigram ids by the unknown id, as unseen bigrams are at test
        time, so the tagger learns to fall back on characters and the lexicon."""
        rate = self.config.data.bigram_unknown_rate
        features = dict(features)
        for key in ("bigram_next", "bigram_prev"):
            ids = features[key]
            drop = (tf.random.uniform(tf.shape(ids), seed=self.config.train.seed) < rate) & (
                ids > 1
            )
            features[key] = tf.where(drop, tf.ones_like(ids), ids)
        return features, tags, weights

    def _dataset(self, sentences: list[list[str]], batch: int, training: bool) -> tf.data.Dataset:
        d = self.config.data
        if training and d.split_clauses:
            sentences = [c for s in sentences for c in split_clauses(s)]
        lines = [" ".join(s) for s in sentences]
        lengths = [sum(len(w) for w in s) for s in sentences]
        ds = tf.data.Dataset.from_tensor_slices(lines)
        ds = ds.map(self._example, num_parallel_calls=tf.data.AUTOTUNE)
        if d.cache:
            ds = ds.cache()
        if training:
            ds = ds.shuffle(
                min(d.shuffle_buffer, len(lines)),
                seed=self.config.train.seed,
                reshuffle_each_iteration=True,
            )
            if d.bigram_unknown_rate > 0 and self.config.model.use_bigrams:
                ds = ds.map(self._forget_bigrams, num_parallel_calls=tf.data.AUTOTUNE)
        # Buckets by length so a batch is mostly real characters, not padding.
        bounds = sorted(
            {b for b in (8, 16, 24, 32, 48, 64, 96, 128, 192, 256) if b < max(lengths, default=1)}
        )
        ds = ds.bucket_by_sequence_length(
            lambda f, t, w: tf.shape(t)[0],
            bucket_boundaries=bounds or [1],
            bucket_batch_sizes=[batch] * (len(bounds or [1]) + 1),
            pad_to_bucket_boundary=False,
            drop_remainder=False,
        )
        return ds.prefetch(tf.data.AUTOTUNE)

    def datasets(self, global_batch_size: int):
        train = self._dataset(self.sentences["train"], global_batch_size, training=True)
        val = None
        if self.sentences["validation"]:
            val = self._dataset(self.sentences["validation"], global_batch_size, training=False)
        return train, val

    # -- model ------------------------------------------------------------------------
    def _spec(self) -> TaggerSpec:
        dense = {}
        if self.lexicon:
            dense["lexicon"] = self.preprocessor.num_lexicon_features
        return TaggerSpec.from_char_config(
            self.config.model,
            num_tags=4,
            char_vocab_size=len(self.chars) + 2,
            bigram_vocab_size=len(self.bigrams) + 2,
            dense_inputs=dense,
        )

    def build_model(self) -> keras.Model:
        return build_recurrent_tagger(self._spec(), name="segmenter")

    def compile_args(self, model: keras.Model) -> dict[str, Any]:
        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy(name="tag_accuracy")],
        }

    # -- serving ----------------------------------------------------------------------
    def signatures(self, model: keras.Model) -> dict[str, Serving]:
        return serving.signatures(self.config, model, self.preprocessor)

    def warmup_inputs(self) -> dict[str, list[Any]]:
        return {"text": ["".join(s) for s in self.sentences["test"][:5]] or ["中文分词"]}

    def segment(self, model: keras.Model, texts: list[str]) -> list[list[str]]:
        """Words of each text through the serving graph, in batches."""
        out = []
        for result in self.serve_batches(model, {"text": texts}, desc="segmenting"):
            out += [[w.decode() for w in row if w] for row in result["words"]]
        return out

    def evaluate(self, model: keras.Model, split: str) -> dict[str, float]:
        gold = self.sentences[split]
        pred = self.segment(model, ["".join(s) for s in gold])
        scores = word_prf(gold, pred)
        return {k: scores[k] for k in ("f1", "precision", "recall")}

    # -- batch prediction -------------------------------------------------------------
