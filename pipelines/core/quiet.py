"""A quiet start: the tool's own output, not TensorFlow's start-up noise.

Importing TensorFlow writes CUDA-stub, CPU-feature and absl notes straight to the
process's stderr from C++, before any log level applies (`TF_CPP_MIN_LOG_LEVEL` does not
stop them). `quiet_start` imports TensorFlow with file descriptor 2 pointed at a
temporary file, and lowers the Python-side loggers that repeat such notes later. With
`verbose` (`tfpipe --verbose` or `TFPIPE_VERBOSE=1`) everything is shown as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

NOISY_LOGGERS = ("absl", "tensorflow", "alembic", "mlflow", "h5py", "matplotlib")
VERBOSE_ENV = "TFPIPE_VERBOSE"


def verbose_from_env() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def native_stderr_captured(replay: bool = False) -> Iterator[None]:
    """Send what native code writes to fd 2 into a temporary file while the block runs
    (written back to stderr afterwards if `replay`)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if replay:
                sink.seek(0)
                sys.stderr.write(sink.read().decode("utf-8", errors="replace"))
                sys.stderr.flush()


def quiet_start(verbose: bool = False) -> None:
    """Import TensorFlow quietly (unless `verbose`) and set the loggers' levels."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        # Keras' note that a tf.data dataset is not shuffled by `fit` (ours are).
        warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed")
        # Keras' note at the end of a finite validation set (the training stream repeats).
        warnings.filterwarnings("ignore", message=r"Your input ran out of data")
    if "tensorflow" not in sys.modules:  # else too late to catch the import's notes
        with native_stderr_captured(replay=verbose):
            import tensorflow as tf

            tf.config.list_physical_devices()  # where the CUDA probe complains
    level = logging.INFO if verbose else logging.ERROR
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(
            level if name in ("absl", "tensorflow") else max(level, logging.WARNING)
        )
    if not verbose:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)


# Notes Apache Beam logs to the root logger on every start: optional GCP clients not
# installed, and memory figures its model manager cannot take without them.
BEAM_NOTES = ("apitools not found", "Resource module is not available")


def quiet_beam(verbose: bool = False) -> None:
    """Drop Beam's routine start-up notes (unless `verbose`); call before importing Beam."""
    if not verbose:
        logging.getLogger().addFilter(lambda record: not record.getMessage().startswith(BEAM_NOTES))
