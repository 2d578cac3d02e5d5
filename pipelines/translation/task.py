"""Machine translation: raw sentence in, translated sentence out.

Subword vocabularies (WordPiece) are learned from the training split; tokenization and
detokenization are in the graph (`tfmodels.translation.SubwordTokenizer`), and so is the
decoding (beam search or greedy, with cached decoder states), so the SavedModel takes raw
text and returns text. Models: the Transformer and the recurrent encoder-decoder with
attention, trained with teacher forcing and label smoothing on batches grouped by length.
BLEU and chrF (sacreBLEU) are measured through the serving graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from pipelines.core.config import ConfigError
from pipelines.core.task import (
    DEFAULT_SIGNATURE,
    Serving,
    Task,
    read_vocabulary,
    write_vocabulary,
)
from pipelines.core.textio import DataError
from pipelines.translation import serving
from pipelines.translation.config import TranslationConfig
from pipelines.translation.corpus import Parallel, read_parallel
from pipelines.translation.metrics import scored, translation_scores
from pipelines.translation.serving import GREEDY
from pipelines.translation.vocabulary import learn_vocabulary
from tfmodels.losses.smoothed_sparse_crossentropy import SmoothedSparseCategoricalCrossentropy
from tfmodels.translation import (
    END_ID,
    START_ID,
    SubwordTokenizer,
    build_translator,
)

SPLITS = ("train", "validation", "test")
_BOUNDARIES = [8, 12, 16, 20, 24, 32, 48, 64, 96]
_TOKENIZE_BATCH = 4096
_SERVE_BATCH = 64


class TranslationTask(Task):
    text_output = "translation"
    name = "translation"
    config_class = TranslationConfig
    default_monitor: ClassVar[str] = "val_loss"
    config: TranslationConfig

    def __init__(self, config: TranslationConfig, data_dir: Path | None):
        super().__init__(config, data_dir)
        self.splits: dict[str, Parallel] = {}
        self.source_vocabulary: list[str] = []  # subword pieces, id i is item i
        self.target_vocabulary: list[str] = []
        self.source_tokenizer: SubwordTokenizer | None = None
        self.target_tokenizer: SubwordTokenizer | None = None
        self.filtered: dict[str, int] = {}  # pairs left out of training, by split
        # split -> (source ids, target ids) of the pairs training keeps
        self.ids: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}

    # -- data -------------------------------------------------------------------------
    def prepare(self, workdir: Path) -> None:
        d = self.config.data
        folder = self.data_dir / d.corpus
        names = {"train": d.train, "validation": d.validation, "test": d.test}
        self.splits = {
            split: read_parallel(folder, names[split], d.source, d.target) for split in SPLITS
        }
        train = self.splits["train"]
        if not any(train.sources):
            raise DataError(f"{train.files[0]}: no training sentences")
        sources = [s for s in train.sources if s]
        targets = [t for t in train.targets if t]
        what = "one subword vocabulary" if d.shared_vocab else "subword vocabularies"
        print(f"[translation] learning {what} from {len(train)} pairs", flush=True)
        if d.shared_vocab:  # both sides' pieces counted together
            size = d.shared_vocab_size or d.source_vocab_size + d.target_vocab_size
            self.source_vocabulary = learn_vocabulary(sources + targets, size)
            self.target_vocabulary = self.source_vocabulary
        else:
            self.source_vocabulary = learn_vocabulary(sources, d.source_vocab_size)
            self.target_vocabulary = learn_vocabulary(targets, d.target_vocab_size)
        self._set_components()
        self.filtered = {}
        self.ids = {split: self._kept_pairs(split) for split in ("train", "validation")}
        counts = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        sizes = (
            f"vocabulary {d.source}+{d.target} {len(self.source_vocabulary)} (shared)"
            if d.shared_vocab
            else f"vocabularies {d.source} {len(self.source_vocabulary)}, "
            f"{d.target} {len(self.target_vocabulary)}"
        )
        print(f"[translation] {counts} pairs; {sizes}", flush=True)

    def check_config(self) -> None:
        d, m = self.config.data, self.config.model
        if d.shared_vocab_size < 0:
            raise ConfigError(f"data.shared_vocab_size={d.shared_vocab_size}: 0 or more")
        if d.shared_vocab_size and not d.shared_vocab:
            raise ConfigError(
                f"data.shared_vocab_size={d.shared_vocab_size} is the size of the vocabulary "
                "data.shared_vocab=true learns: set that too, or leave the size at 0"
            )
        if not m.tie_embeddings:
            return
        if not d.shared_vocab:
            raise ConfigError(
                "model.tie_embeddings=true needs data.shared_vocab=true: one embedding "
                "serves source, target and output only over one vocabulary"
            )
        if m.name == "rnn_attention" and m.embedding != m.units:
            raise ConfigError(
                f"model.tie_embeddings=true with model.name=rnn_attention needs "
                f"model.embedding ({m.embedding}) == model.units ({m.units}): the output "
                "projection is the embedding's transpose"
            )

    def _vocabularies(self) -> dict[str, list[str]]:
        """Asset file name -> vocabulary: the shared one, or one a language."""
        d = self.config.data
        if d.shared_vocab:
            return {f"vocabulary.{d.source}-{d.target}.txt": self.source_vocabulary}
        return {
            f"vocabulary.{d.source}.txt": self.source_vocabulary,
            f"vocabulary.{d.target}.txt": self.target_vocabulary,
        }

    def _set_components(self) -> None:
        if self.config.data.shared_vocab:
            tokenizer = SubwordTokenizer(self.source_vocabulary, name="tokenizer")
            self.source_tokenizer = self.target_tokenizer = tokenizer
            return
        self.source_tokenizer = SubwordTokenizer(self.source_vocabulary, name="source_tokenizer")
        self.target_tokenizer = SubwordTokenizer(self.target_vocabulary, name="target_tokenizer")

    def _kept_pairs(self, split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Token ids of the split's pairs that training keeps: both sides non-empty and
        within `data.max_*_tokens` (the rest are counted and left out)."""
        d, pairs = self.config.data, self.splits[split]
        sources = _token_ids(self.source_tokenizer, pairs.sources)
        targets = _token_ids(self.target_tokenizer, pairs.targets)
        kept = [
            i
            for i, (s, t) in enumerate(zip(sources, targets, strict=True))
            if 0 < len(s) <= d.max_source_tokens and 0 < len(t) <= d.max_target_tokens
        ]
        empty = sum(1 for s, t in zip(sources, targets, strict=True) if not len(s) or not len(t))
        dropped = len(pairs) - len(kept)
        if dropped:
            print(
                f"[translation] {split}: left out {dropped} of {len(pairs)} pairs "
                f"({empty} with an empty side, {dropped - empty} over "
                f"{d.max_source_tokens}/{d.max_target_tokens} tokens)",
                flush=True,
            )
        if split == "train" and not kept:
            raise DataError(
                f"{pairs.files[0]}: no training pair is non-empty and within "
                "data.max_source_tokens / data.max_target_tokens"
            )
        self.filtered[split] = dropped
        return [sources[i] for i in kept], [targets[i] for i in kept]

    def data_files(self) -> list[Path]:
        return [f for p in self.splits.values() for f in p.files]

    def save_assets(self, folder: Path) -> list[Path]:
        """The subword vocabularies (id i is line i): source and target, or the shared one."""
        return [write_vocabulary(folder / name, v) for name, v in self._vocabularies().items()]

    def load_assets(self, folder: Path) -> None:
        vocabularies = [read_vocabulary(folder / name) for name in self._vocabularies()]
        self.source_vocabulary, self.target_vocabulary = vocabularies[0], vocabularies[-1]
        self._set_components()

    def _dataset(self, split: str, batch: int, training: bool) -> tf.data.Dataset:
        """Batches of `({source, target}, target_out, weights)` with pairs of similar
        length together: `target` is the reference after [START] (teacher forcing),
        `target_out` the reference then [END]; padding has weight 0."""
        sources, targets = self.ids[split]
        source_ids, target_ids = _ragged(sources), _ragged(targets)
        ds = (
            tf.data.Dataset.range(len(sources))
            .map(lambda i: (source_ids[i], target_ids[i]))
            .cache()
        )
        if training:
            ds = ds.shuffle(
                min(self.config.data.shuffle_buffer, len(sources)),
                seed=self.config.train.seed,
                reshuffle_each_iteration=True,
            )
        ds = ds.bucket_by_sequence_length(
            lambda s, t: tf.maximum(tf.shape(s)[0], tf.shape(t)[0] + 1),
            bucket_boundaries=_BOUNDARIES,
            bucket_batch_sizes=[batch] * (len(_BOUNDARIES) + 1),
            pad_to_bucket_boundary=False,
            drop_remainder=False,
        )

        def to_example(source, target):
            rows = tf.shape(target)[0]
            target_in = tf.concat([tf.fill([rows, 1], START_ID), target], axis=1)
            lengths = tf.reduce_sum(tf.cast(target > 0, tf.int32), axis=1)
            target_out = tf.concat([target, tf.zeros([rows, 1], tf.int32)], axis=1)
            target_out = tf.tensor_scatter_nd_update(
                target_out, tf.stack([tf.range(rows), lengths], axis=1), tf.fill([rows], END_ID)
            )
            weights = tf.cast(tf.sequence_mask(lengths + 1, tf.shape(target_out)[1]), tf.float32)
            return {"source": source, "target": target_in}, target_out, weights

        return ds.map(to_example, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def datasets(self, global_batch_size: int):
        val = (
            self._dataset("validation", global_batch_size, training=False)
            if self.ids["validation"][0]
            else None
        )
        return self._dataset("train", global_batch_size, training=True), val

    # -- model ------------------------------------------------------------------------
    def build_model(self) -> keras.Model:
        d = self.config.data
        return build_translator(
            self.config.model,
            len(self.source_vocabulary),
            len(self.target_vocabulary),
            max_source=d.max_source_tokens + 1,
            max_target=d.max_target_tokens + 1,
        )

    def compile_args(self, model: keras.Model) -> dict[str, Any]:
        loss = SmoothedSparseCategoricalCrossentropy(
            self.config.model.label_smoothing, from_logits=True, reduction="mean_with_sample_weight"
        )
        return {
            "loss": loss,
            "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")],
        }

    # -- serving ----------------------------------------------------------------------
    def signatures(self, model: keras.Model) -> dict[str, Serving]:
        return serving.signatures(self.config, model, self.source_tokenizer, self.target_tokenizer)

    def warmup_inputs(self) -> dict[str, list[Any]]:
        return {"text": self.splits["test"].sources[:5]}

    # -- metrics ----------------------------------------------------------------------
    def translate(
        self, model: keras.Model, sentences: Sequence[str], signature: str = DEFAULT_SIGNATURE
    ) -> list[str]:
        """Translations of `sentences` through the serving graph, in the input order."""

        def answers(ranked: list[str]) -> Iterator[list[str]]:
            for result in self.serve_batches(
                model, {"text": ranked}, signature, batch_size=_SERVE_BATCH, desc="translating"
            ):
                yield [t.decode("utf-8") for t in result["translation"]]

        return in_length_order(sentences, answers)

    def validation_every(self) -> int:
        return self.config.eval.every_epochs

    def evaluate(self, model: keras.Model, split: str) -> dict[str, float]:
        """BLEU and chrF (sacreBLEU) of the detokenized output against the raw
        references; dev decodes as `eval.decoder` says (every `eval.every_epochs`)."""
        pairs = self.splits[split]
        greedy = split == "validation" and self.config.eval.decoder == "greedy"
        hyps = self.translate(model, pairs.sources, GREEDY if greedy else DEFAULT_SIGNATURE)
        if split == "test":
            for name, (score, signature) in scored(pairs.targets, hyps).items():
                print(f"[translation] test {name} {score:.2f} (sacreBLEU {signature})", flush=True)
        return translation_scores(pairs.targets, hyps)

    def plots(self, model: keras.Model, out_dir: Path) -> list[Path]:
        """Cross-attention heat maps of a few test sentences: output tokens down, source
        tokens across (the Transformer's last decoder layer, averaged over heads)."""
        from pipelines.translation.plots import attention_png

        sentences = self.splits["test"].sources[: self.config.eval.attention_plots]
        out = []
        for i, sentence in enumerate(sentences):
            source = self.source_tokenizer.tokenize(tf.constant([sentence])).to_tensor()
            if source.shape[1] == 0:
                continue
            source = source[:, : self.config.data.max_source_tokens]
            bound = tf.constant([self.config.data.max_target_tokens + 1])
            tokens, _ = model.translate(source, bound, greedy=True)
            tokens = tokens.numpy()[0]
            target = np.concatenate([[START_ID], tokens[:-1]])[None]
            weights = model.cross_attention(source, tf.constant(target, tf.int32)).numpy()[0]
            out.append(
                attention_png(
                    weights,
                    [self.source_vocabulary[t] for t in source.numpy()[0]],
                    [self.target_vocabulary[t] for t in tokens],
                    sentence,
                    Path(out_dir) / f"attention_{i}.png",
                )
            )
        return out

    # -- batch prediction -------------------------------------------------------------


def in_length_order(
    sentences: Sequence[str], answers: Callable[[list[str]], Iterable[list[str]]]
) -> list[str]:
    """What `answers` gives for `sentences` sorted by length (so that each batch holds
    sentences of similar length and decodes no longer than it must), back in input order."""
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    ranked = [answer for batch in answers([sentences[i] for i in order]) for answer in batch]
    out = [""] * len(sentences)
    for i, answer in zip(order, ranked, strict=True):
        out[i] = answer
    return out


def _token_ids(tokenizer: SubwordTokenizer, lines: Sequence[str]) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for start in range(0, len(lines), _TOKENIZE_BATCH):
        ids = tokenizer.tokenize(
            tf.constant(list(lines[start : start + _TOKENIZE_BATCH]), tf.string)
        )
        out += [np.asarray(row, np.int32) for row in ids.numpy()]
    return out


def _ragged(rows: Sequence[np.ndarray]) -> tf.RaggedTensor:
    lengths = [len(r) for r in rows]
    values = np.concatenate(rows) if rows else np.zeros([0], np.int32)
    return tf.RaggedTensor.from_row_lengths(
        tf.constant(values, tf.int32), tf.constant(lengths, tf.int64)
    )
