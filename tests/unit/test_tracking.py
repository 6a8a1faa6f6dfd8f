"""W&B tracking: offline runs land on disk, disabled does nothing, and a W&B failure never fails training."""

import pytest

from trending_assets.lib import tracking


def test_offline_run_writes_metrics_table_and_model_artifact(tmp_path):
    model = tmp_path / "model.ubj"
    model.write_bytes(b"booster")
    with tracking.tracked_run("offline", tmp_path / "wandb", "trending-now", "xgboost-v1", {"eta": 0.1}) as run:
        assert run.active
        run.log_metrics({"macro_f1": 0.61})
        run.log_table("per_genre", ["genre", "f1"], [["drama", 0.7]])
        run.log_model(model, "xgboost", aliases=["candidate", "xgboost-v1"])
    runs = list((tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].glob("*.wandb"))  # syncable later with `wandb sync`


def test_disabled_mode_tracks_nothing(tmp_path):
    with tracking.tracked_run("disabled", tmp_path / "wandb", "p", "n", {}) as run:
        run.log_metrics({"f1": 1.0})
        assert not run.active
    assert not (tmp_path / "wandb").exists()


def test_a_wandb_failure_is_a_warning_not_an_error(tmp_path, monkeypatch):
    import wandb

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(wandb, "init", broken)
    warnings = []
    with tracking.tracked_run("offline", tmp_path, "p", "n", {}, warn=warnings.append) as run:
        run.log_metrics({"f1": 1.0})  # still callable: a no-op
    assert not run.active
    assert "W&B init failed (OSError: disk full)" in warnings[0]


def test_a_failure_mid_run_turns_tracking_off(tmp_path):
    warnings = []
    with tracking.tracked_run("offline", tmp_path / "wandb", "p", "n", {}, warn=warnings.append) as run:
        run.log_model(tmp_path / "missing.bin", "m", aliases=["candidate"])
        assert not run.active
        run.log_metrics({"f1": 1.0})
    assert "W&B artifact failed" in warnings[0]


def test_modes_are_validated_and_online_without_a_key_stays_offline(monkeypatch):
    with pytest.raises(ValueError, match="W&B mode 'cloud' is not one of: offline, online, disabled"):
        tracking.resolve_mode("cloud")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert tracking.resolve_mode("online") == "offline"
