"""The model registry on the default embedded store (`W/mlflow.db`): registration, aliases
and `models:/NAME@ALIAS` reads. Real SavedModels registered on a server: see
test_postgres_tracking.py."""

import pytest

from pipelines.core.config import ConfigError, ExportConfig
from pipelines.core.model_registry import promote, register_export
from pipelines.core.tracking import NotTracked, Tracker, tracking_uri


def test_embedded_store_registers_and_moves_aliases(tmp_path, monkeypatch):
    import mlflow.artifacts

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workdir = tmp_path / "w"
    tracker = Tracker(workdir, "slots")
    run_id = tracker.start("r", tmp_path / "state")
    exports = []
    for version in ("1", "2"):
        export_dir = tmp_path / "exports" / "slots" / version
        export_dir.mkdir(parents=True)
        (export_dir / "saved_model.pb").write_text(f"version {version}")
        tracker.log_artifacts(export_dir, f"savedmodel-v{version}")
        exports.append(export_dir)
    tracker.finish(tmp_path / "state")

    off = ExportConfig()
    assert register_export(workdir, off, "slots", run_id, "savedmodel-v1", exports[0]) is None
    on = ExportConfig(register=True, registered_model="slot-filler")
    assert [
        register_export(workdir, on, "slots", run_id, f"savedmodel-v{i + 1}", d)
        for i, d in enumerate(exports)
    ] == ["1", "2"]
    # Registered without a gate: not blessed, so promoting them takes force.
    assert promote("slot-filler", "1", "production", workdir, force=True) is None
    assert promote("slot-filler", "2", "production", workdir, force=True) == "1"
    with pytest.raises(NotTracked, match=r"'slot-filler' has no version 3 \(versions: 1, 2\)"):
        promote("slot-filler", "3", "production", workdir)
    with pytest.raises(NotTracked, match="no registered model 'slots'"):
        promote("slots", "1", "production", workdir)

    # What a deployment does: the store named by MLFLOW_TRACKING_URI, the alias's version.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri(workdir))
    got = mlflow.artifacts.download_artifacts(
        "models:/slot-filler@production", dst_path=str(tmp_path / "deployed")
    )
    assert (tmp_path / "deployed" / "saved_model.pb").read_text() == "version 2", got

    no_artifact = ExportConfig(register=True, log_to_mlflow=False)
    with pytest.raises(ConfigError, match="export.register=true needs export.log_to_mlflow"):
        register_export(workdir, no_artifact, "slots", run_id, "savedmodel", exports[0])
