"""`tfpipe`: run a pipeline, predict with an export."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipelines.core.registry import PIPELINES


def _run(args: argparse.Namespace) -> int:
    from pipelines.core.runner import load_task_config, run_pipeline

    config = load_task_config(args.pipeline, args.config, args.set or [])
    result = run_pipeline(args.pipeline, config, args.data_dir, args.workdir)
    print(f"run {result.run_id} ({result.tracking_uri})")
    for key, value in result.test_metrics.items():
        print(f"test_{key}: {value:.4f}")
    if result.export_dir:
        print(f"export: {result.export_dir}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from pipelines.core.export import latest_export
    from pipelines.core.predict import predict_file

    export_dir = Path(args.export) if args.export else latest_export(
        Path(args.workdir) / "exports", args.pipeline)
    count = predict_file(args.pipeline, Path(args.input), Path(args.output), export_dir,
                         batch_size=args.batch_size)
    print(f"wrote {count} lines to {args.output} with {export_dir}")
    return 0


def _images_to_tfrecord(args: argparse.Namespace) -> int:
    from pipelines.images.tfrecord import main as convert_main

    return convert_main(args)


def _compare(args: argparse.Namespace) -> int:
    from pipelines.core.compare import main as compare_main

    return compare_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfpipe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="prepare data, train, evaluate, export, track")
    run.add_argument("pipeline", choices=sorted(PIPELINES))
    run.add_argument("--config", help="YAML config file")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config key (repeatable), e.g. --set train.epochs=3")
    run.add_argument("--data-dir", help="data folder (default: $TFPIPE_DATA_DIR or bundled data/)")
    run.add_argument("--workdir", default="runs", help="MLflow store, checkpoints, exports")
    run.set_defaults(func=_run)

    pred = sub.add_parser("predict", help="run an export over a file, line by line")
    pred.add_argument("pipeline", choices=sorted(PIPELINES))
    pred.add_argument("--input", required=True)
    pred.add_argument("--output", required=True)
    pred.add_argument("--export", help="SavedModel folder (default: latest under the workdir)")
    pred.add_argument("--workdir", default="runs")
    pred.add_argument("--batch-size", type=int, default=256)
    pred.set_defaults(func=_predict)

    data = sub.add_parser("data", help="data conversion tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    to_tfrecord = data_sub.add_parser(
        "images-to-tfrecord", help="image folder (a subfolder per class) -> TFRecord shards")
    to_tfrecord.add_argument("src", help="image folder: train/ test/ [val/], a folder per class")
    to_tfrecord.add_argument("dst", help="output folder for the shards and meta.json")
    to_tfrecord.add_argument("--shard-mb", type=float, default=100.0, help="target shard size")
    to_tfrecord.add_argument("--on-bad-image", choices=("fail", "skip"), default="fail")
    to_tfrecord.add_argument("--val-fraction", type=float, default=0.1,
                             help="carved from train when there is no val/ folder")
    to_tfrecord.add_argument("--test-fraction", type=float, default=0.2,
                             help="carved from train when there is no test/ folder")
    to_tfrecord.set_defaults(func=_images_to_tfrecord)

    from pipelines.core.compare import add_arguments as compare_arguments

    compare = sub.add_parser("compare", help="a pipeline's MLflow runs side by side, and a plot")
    compare_arguments(compare)
    compare.set_defaults(func=_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("absl", "tensorflow", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    from pipelines.core.config import ConfigError
    from pipelines.core.textio import DataError

    try:
        return args.func(args)
    except (ConfigError, DataError, FileNotFoundError, KeyError) as exc:
        print(f"tfpipe: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
