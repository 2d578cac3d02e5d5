"""Typed config of the speech-recognition pipeline (`tfpipe run speech`)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from pipelines.core.config import DataConfig, PipelineConfig, ScheduleConfig, TrainConfig
from tfmodels.speech.config import CTCRecognizerConfig


@dataclasses.dataclass
class SpeechDataConfig(DataConfig):
    """Where the utterances are: TSV manifests (`path`, `transcript`), or FSDD recordings
    joined into connected-digit utterances."""

    # A folder (relative to the data dir) holding the manifests below.
    corpus: str = "speech/sample"
    train: str = "train.tsv"
    validation: str = "dev.tsv"  # missing file: hold out `val_fraction` of train
    test: str = "test.tsv"
    # Single-word test utterances (FSDD's isolated digits): word accuracy as a second figure.
    isolated_test: str = "test_digits.tsv"
    val_fraction: float = 0.1
    on_error: Literal["fail", "skip"] = "fail"  # bad manifest lines (named by file and line)
    sample_rate: int = 8000  # the model's; other rates are resampled in the graph
    max_seconds: float = 60.0  # longer input is cut (training and serving)
    max_train_seconds: float = 30.0  # longer training utterances are left out
    # FSDD recordings folder (relative to the data dir, e.g. speech/fsdd/recordings): when
    # set, connected-digit utterances are built from it (once, cached in `prepared_dir`)
    # and `corpus` is not read.
    fsdd: str = ""
    fsdd_train: int = 8000
    fsdd_dev: int = 500
    fsdd_test: int = 1000
    fsdd_max_digits: int = 7
    fsdd_seed: int = 0  # fixes the dev and test sets
    # Also train on every training recording alone (between drawn edges), once an epoch:
    # the isolated-word condition, which connected utterances show only as 1 in 7 draws.
    fsdd_isolated_train: bool = False
    # Draw new training combinations every epoch instead of the fixed training manifest.
    fsdd_fresh_train: bool = False
    # Folders (relative to the data dir, or absolute) of other speakers' recordings in
    # FSDD's naming that join the training split alone, each once an epoch (never joined
    # into connected utterances, never in dev or test): e.g. synthetic speakers
    # (`python -m pipelines.speech.synth DST`).
    fsdd_extra_train: list[str] = dataclasses.field(default_factory=list)
    # Speakers kept out of training and dev entirely (FSDD), e.g. [theo].
    test_speakers: list[str] = dataclasses.field(default_factory=list)
    prepared_dir: str = ""  # default: $TFPIPE_CACHE_DIR/speech, else ~/.cache/tfpipelines/speech
    shuffle_buffer: int = 10000


@dataclasses.dataclass
class SpeechModelConfig(CTCRecognizerConfig):
    """The recogniser (`tfmodels.speech.CTCRecognizerConfig`) and the pipeline's own
    training-time perturbation of the waveforms."""

    # Waveform perturbation (training only); 0 turns each off: a speed factor within
    # 1 +- speed (tempo and pitch), a gain within +-gain_db, white noise at an SNR from
    # noise_snr_db to noise_snr_db + 20 dB.
    speed: float = 0.0
    gain_db: float = 0.0
    noise_snr_db: float = 0.0
    # Also (training only; 0 = off): the tempo alone (pitch kept) within 1 +- tempo, the
    # pitch alone (duration kept) within 1 +- pitch, and vocal-tract-length perturbation,
    # the spectrum warped along frequency by a factor within 1 +- vtlp (0.1: 0.9 to 1.1).
    tempo: float = 0.0
    pitch: float = 0.0
    vtlp: float = 0.0
    # Where VTLP warps: features (each utterance's power spectrum before the mel filters,
    # in the model, as Jaitly and Hinton did: one gather a batch) or waveform (a
    # phase-vocoder resynthesis in the input pipeline, which halves training throughput on
    # two CPU cores).
    vtlp_domain: Literal["features", "waveform"] = "features"
    # Room reverberation (training only; 0 = off): each utterance convolved with a synthetic
    # impulse response of a reverberation time (RT60) drawn from 0 to this many seconds.
    reverb_rt60: float = 0.0
    # Each utterance's log-mel features to zero mean and unit variance per mel bin over its
    # frames, in the graph (training and serving); false: the raw log-mel energies.
    utterance_norm: bool = True
    # Keep the first this many cepstral coefficients of each frame's log-mel energies and
    # turn them back into mel bins (0 = all): the spectral envelope without the harmonics of
    # the speaker's pitch, in the graph (training and serving).
    cepstra: int = 0


@dataclasses.dataclass
class SpeechServingConfig:
    """Serving options: they may change when a trained run is exported again."""

    decoder: Literal["beam_search", "greedy"] = "beam_search"  # signature `greedy` is always there
    beam_width: int = 8
    # sequence: the probability of the decoded labelling; frame: the mean largest
    # per-frame posterior (independent of the utterance's length)
    confidence: Literal["sequence", "frame"] = "sequence"
    # Input whose RMS level is below this (dB relative to full scale) is silence: its
    # transcript is empty. Per-utterance feature normalisation would otherwise amplify
    # near-silence into patterns the model reads as speech.
    silence_dbfs: float = -60.0
    # Replace each decoded word by the nearest word (in characters) of the training
    # transcripts: a closed vocabulary (digits, commands) spelled right.
    snap_to_lexicon: bool = False
    # Low noise (`pad_dbfs` RMS) added before and after each utterance, this long: trimmed
    # clips (one word cut tight, as FSDD's recordings are) then look like the training
    # utterances, which have pauses at their ends. 0 = off.
    pad_ms: float = 0.0
    pad_dbfs: float = -60.0


def _speech_train() -> TrainConfig:
    return TrainConfig(
        epochs=40,
        batch_size=16,
        learning_rate=3e-3,
        clipnorm=5.0,
        early_stopping_patience=8,
        monitor="val_wer",
        schedule=ScheduleConfig(name="cosine", alpha=0.05, warmup_steps=50),
    )


@dataclasses.dataclass
class SpeechConfig(PipelineConfig):
    data: SpeechDataConfig = dataclasses.field(default_factory=SpeechDataConfig)
    model: SpeechModelConfig = dataclasses.field(default_factory=SpeechModelConfig)
    serving: SpeechServingConfig = dataclasses.field(default_factory=SpeechServingConfig)
    train: TrainConfig = dataclasses.field(default_factory=_speech_train)
