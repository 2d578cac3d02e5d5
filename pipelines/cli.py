"""`tfpipe`: run a pipeline, tune it, export a trained run again, predict with an export,
promote a registered version."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from pipelines.core.quiet import VERBOSE_ENV, quiet_beam, quiet_start, verbose_from_env
from pipelines.core.registry import pipeline_tasks

#: Exit status when the release gate blocks an export or promote refuses an unblessed
#: version: a cron chain `tfpipe run ... && tfpipe promote ...` stops there.
REFUSED = 3


def _run(args: argparse.Namespace) -> int:
    from pipelines.core.multiworker import PEER_FAILURES, rejoin
    from pipelines.core.runner import load_task_config, run_pipeline

    config = load_task_config(args.pipeline, args.config, args.set or [])
    if args.local_workers:
        from pipelines.core.launcher import launch_local

        return launch_local(_run_args(args), args.local_workers, Path(args.workdir))
    try:
        result = run_pipeline(args.pipeline, config, args.data_dir, args.workdir)
    except PEER_FAILURES as exc:
        rejoin(exc)  # multi-worker: re-executes this process, which resumes
        raise
    if result.run_id is None:  # a multi-worker job's other worker: the chief reports
        return 0
    print(f"run {result.run_id} ({result.tracking_uri})")
    for key, value in result.test_metrics.items():
        print(f"test_{key}: {value:.4f}")
    if result.export_dir:
        print(f"export: {result.export_dir}")
    return _gate_status(args.pipeline, result.gate, result.run_id)


def _gate_status(pipeline: str, gate, run_id: str | None) -> int:
    """0, or `REFUSED` with the failing metrics on stderr when the gate blocked the export."""
    if gate is None or gate.passed:
        return 0
    print(f"tfpipe: error: {gate.message(pipeline)}", file=sys.stderr)
    print(f"(the trained model stays with run {run_id})", file=sys.stderr)
    return REFUSED


def _run_args(args: argparse.Namespace) -> list[str]:
    """`tfpipe run` arguments that start one worker of the same job."""
    out = [args.pipeline, "--workdir", args.workdir]
    out += ["--config", args.config] if args.config else []
    out += ["--data-dir", args.data_dir] if args.data_dir else []
    return out + [a for value in args.set or [] for a in ("--set", value)]


def _export(args: argparse.Namespace) -> int:
    from pipelines.core.reexport import export_from_run

    result = export_from_run(args.pipeline, args.run, args.set or [], args.workdir)
    if result.export_dir:
        print(f"export: {result.export_dir}")
    return _gate_status(args.pipeline, result.gate, result.run_id)


def _predict(args: argparse.Namespace) -> int:
    from pipelines.core.config import ConfigError
    from pipelines.core.export import latest_export
    from pipelines.core.model_registry import download_model, is_model_uri

    if args.runner != "beam" and (args.beam_args or args.single_file):
        raise ConfigError("Beam pipeline options (after --) and --single-file need --runner beam")
    if args.export and is_model_uri(args.export):
        with tempfile.TemporaryDirectory(prefix="tfpipe-registered-") as download:
            export_dir = download_model(args.export, Path(args.workdir), Path(download))
            return _predict_with(args, export_dir, shown=args.export)
    export_dir = (
        Path(args.export)
        if args.export
        else latest_export(Path(args.workdir) / "exports", args.pipeline)
    )
    return _predict_with(args, export_dir, shown=str(export_dir))


def _predict_with(args: argparse.Namespace, export_dir: Path, shown: str) -> int:
    """Predict with the SavedModel in `export_dir` (`shown`: how the output names it)."""
    from pipelines.core.predict import predict_file

    if args.runner == "beam":
        return _predict_on_beam(args, export_dir, shown)
    count = predict_file(
        args.pipeline,
        Path(args.input),
        Path(args.output),
        export_dir,
        batch_size=args.batch_size,
        signature=args.signature,
    )
    print(f"wrote {count} lines to {args.output} with {shown} ({args.signature})")
    return 0


def _predict_on_beam(args: argparse.Namespace, export_dir: Path, shown: str) -> int:
    from pipelines.core.config import ConfigError

    quiet_beam(args.verbose or verbose_from_env())
    try:
        from pipelines.core.beam_predict import predict_on_beam
    except ModuleNotFoundError as exc:
        if exc.name != "apache_beam":
            raise
        raise ConfigError('--runner beam needs Apache Beam: pip install -e ".[beam]"') from exc

    result = predict_on_beam(
        args.pipeline,
        args.input,
        args.output,
        str(export_dir),
        batch_size=args.batch_size,
        signature=args.signature,
        single_file=args.single_file,
        beam_args=args.beam_args,
    )
    counts = (
        ""
        if result.answered is None
        else f"{result.answered} lines answered, {result.failed} dead-lettered; "
    )
    print(
        f"{counts}answers: {result.outputs}, dead letters: {result.errors} "
        f"({shown}, {args.signature})"
    )
    return 0


def _images_to_tfrecord(args: argparse.Namespace) -> int:
    from pipelines.image_input.tfrecord import main as convert_main

    return convert_main(args)


def _fsdd_connected(args: argparse.Namespace) -> int:
    from pipelines.speech.fsdd import main as fsdd_main

    return fsdd_main(args.fsdd_args)


def _compare(args: argparse.Namespace) -> int:
    from pipelines.core.compare import main as compare_main

    return compare_main(args)


def _tune(args: argparse.Namespace) -> int:
    from pipelines.core.tune import main as tune_main

    return tune_main(args)


def _promote(args: argparse.Namespace) -> int:
    from pipelines.core.model_registry import NotBlessed, promote, resolve_version

    version = resolve_version(args.name, args.version, Path(args.workdir))
    try:
        before = promote(args.name, version, args.alias, Path(args.workdir), force=args.force)
    except NotBlessed as exc:
        print(f"tfpipe: error: {exc}", file=sys.stderr)
        return REFUSED
    moved = f"from version {before} " if before else ""
    print(
        f"model '{args.name}': alias '{args.alias}' moved {moved}to version {version} "
        f"(models:/{args.name}@{args.alias})"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfpipe", description=__doc__)
    parser.add_argument(
        "--verbose",
        action="store_true",
        help=f"show TensorFlow's start-up and log output (or {VERBOSE_ENV}=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="prepare data, train, evaluate, export, track")
    run.add_argument("pipeline", choices=sorted(pipeline_tasks()))
    run.add_argument("--config", help="YAML config file")
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key (repeatable), e.g. --set train.epochs=3",
    )
    run.add_argument("--data-dir", help="data folder (default: $TFPIPE_DATA_DIR or bundled data/)")
    run.add_argument("--workdir", default="runs", help="MLflow store, checkpoints, exports")
    run.add_argument(
        "--local-workers",
        type=int,
        default=0,
        metavar="N",
        help="multi-worker training: N worker processes on 127.0.0.1 "
        "(the others' output in WORKDIR/logs/)",
    )
    run.set_defaults(func=_run)

    exp = sub.add_parser(
        "export",
        help="export a finished run's kept model again, "
        "with changed serving options, without training",
    )
    exp.add_argument("pipeline", choices=sorted(pipeline_tasks()))
    exp.add_argument(
        "--run",
        required=True,
        metavar="RUN_ID_OR_NAME",
        help="MLflow run id, run name (the newest finished run of that name), "
        "or a kept model folder",
    )
    exp.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="change a serving.* or export.* key, e.g. --set serving.top_k=3",
    )
    exp.add_argument("--workdir", default="runs", help="MLflow store, state and exports")
    exp.set_defaults(func=_export)

    pred = sub.add_parser("predict", help="run an export over a file, line by line")
    pred.add_argument("pipeline", choices=sorted(pipeline_tasks()))
    pred.add_argument("--input", required=True)
    pred.add_argument("--output", required=True)
    pred.add_argument(
        "--export",
        help="SavedModel folder, or a registered version: models:/NAME@ALIAS or "
        "models:/NAME/VERSION (default: the latest export under the workdir)",
    )
    pred.add_argument("--workdir", default="runs")
    pred.add_argument("--batch-size", type=int, default=256)
    pred.add_argument(
        "--signature", default="serving_default", help="which of the export's signatures to call"
    )
    pred.add_argument(
        "--runner",
        choices=("local", "beam"),
        default="local",
        help="local: this process; beam: an Apache Beam job (RunInference)",
    )
    pred.add_argument(
        "--single-file",
        action="store_true",
        help="beam: OUTPUT is one file sorted by line, as without Beam "
        "(instead of numbered shards)",
    )
    pred.set_defaults(func=_predict, beam_args=[])
    pred.epilog = (
        "With --runner beam, everything after -- is Beam's pipeline options, e.g. "
        "-- --runner=FlinkRunner (default: the DirectRunner)."
    )

    data = sub.add_parser("data", help="data conversion tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    to_tfrecord = data_sub.add_parser(
        "images-to-tfrecord", help="image folder (a subfolder per class) -> TFRecord shards"
    )
    to_tfrecord.add_argument("src", help="image folder: train/ test/ [val/], a folder per class")
    to_tfrecord.add_argument("dst", help="output folder for the shards and meta.json")
    to_tfrecord.add_argument("--shard-mb", type=float, default=100.0, help="target shard size")
    to_tfrecord.add_argument("--on-bad-image", choices=("fail", "skip"), default="fail")
    to_tfrecord.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="carved from train when there is no val/ folder",
    )
    to_tfrecord.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="carved from train when there is no test/ folder",
    )
    to_tfrecord.set_defaults(func=_images_to_tfrecord)
    fsdd = data_sub.add_parser(
        "fsdd-connected",
        add_help=False,
        help="connected-digit utterances from FSDD recordings (SRC DST [--train N ...]; "
        "--help for all)",
    )
    fsdd.add_argument("fsdd_args", nargs=argparse.REMAINDER)
    fsdd.set_defaults(func=_fsdd_connected)

    from pipelines.core.compare import add_arguments as compare_arguments

    compare = sub.add_parser("compare", help="a pipeline's MLflow runs side by side, and a plot")
    compare_arguments(compare)
    compare.set_defaults(func=_compare)

    tune = sub.add_parser(
        "tune",
        help="search config values with Optuna: each trial a nested MLflow run, "
        "the best config written as a recipe",
    )
    tune.add_argument("pipeline", choices=sorted(pipeline_tasks()))
    tune.add_argument("--space", required=True, help="YAML search space (see docs/tuning.md)")
    tune.add_argument("--trials", type=int, default=10, help="how many trials (default 10)")
    tune.add_argument("--config", help="YAML config file the trials start from")
    tune.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)"
    )
    tune.add_argument("--data-dir", help="data folder (default: $TFPIPE_DATA_DIR or bundled data/)")
    tune.add_argument("--workdir", default="runs", help="MLflow store, checkpoints, recipes")
    tune.add_argument(
        "--name",
        help="the tune's name: runs tune-NAME and tune-NAME-trial-K (default: run_name, "
        "else the pipeline)",
    )
    tune.add_argument("--out", help="recipe path (default: WORKDIR/tune/PIPELINE-NAME.yaml)")
    tune.set_defaults(func=_tune)

    promote = sub.add_parser(
        "promote", help="point a registered model's alias (production) at one of its versions"
    )
    promote.add_argument(
        "name",
        metavar="PIPELINE",
        help="registered model: the pipeline's name unless export.registered_model named another",
    )
    promote.add_argument(
        "version",
        metavar="VERSION",
        help="model version (tfpipe run/export print it), or an alias naming one: candidate",
    )
    promote.add_argument("--alias", default="production")
    promote.add_argument(
        "--force",
        action="store_true",
        help="move the alias to a version the release gate did not bless",
    )
    promote.add_argument(
        "--workdir", default="runs", help="holds mlflow.db (or set MLFLOW_TRACKING_URI)"
    )
    promote.set_defaults(func=_promote)
    return parser


def _split_beam_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """`tfpipe predict ... -- BEAM OPTIONS`: what follows -- goes to Beam untouched
    (argparse would take it for this tool's own arguments)."""
    command = next((a for a in argv if not a.startswith("-")), None)
    if command != "predict" or "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def main(argv: list[str] | None = None) -> int:
    argv, beam_args = _split_beam_args(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    if beam_args:
        args.beam_args = beam_args
    verbose = args.verbose or verbose_from_env()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    quiet_start(verbose)
    from pipelines.core.config import ConfigError
    from pipelines.core.textio import DataError

    try:
        return args.func(args)
    except (ConfigError, DataError, FileNotFoundError, KeyError) as exc:
        print(f"tfpipe: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
