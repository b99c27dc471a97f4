"""Shared Trainer plumbing: which checkpoint a resume picks, said in one line."""

import logging

from nlpgd.models.hf_base import last_checkpoint, resume_point


def _checkpoint(root, step, complete=True):
    d = root / f"checkpoint-{step}"
    d.mkdir()
    (d / "config.json").write_text("{}")
    if complete:  # the Trainer writes trainer_state.json last
        (d / "trainer_state.json").write_text("{}")
    return d


def test_last_checkpoint_skips_one_cut_short_while_saving(tmp_path, caplog):
    _checkpoint(tmp_path, 5)
    nine = _checkpoint(tmp_path, 9)
    _checkpoint(tmp_path, 12, complete=False)
    (tmp_path / "checkpoint-final").mkdir()  # not a step number: ignored
    assert last_checkpoint(tmp_path) == nine  # by step number, not by name order (12 > 9 > 5)
    assert not caplog.records  # finding it is quiet; resume_point is what says it
    with caplog.at_level(logging.INFO, logger="nlpgd"):
        assert resume_point(tmp_path, "gpt2/seed0") == nine
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("gpt2/seed0: skipping damaged checkpoints")
    assert "checkpoint-12: it has no trainer_state.json (interrupted while saving)" in line
    assert line.endswith("resuming from checkpoint-9")


def test_last_checkpoint_none(tmp_path, caplog):
    assert last_checkpoint(tmp_path / "missing") is None
    assert last_checkpoint(tmp_path) is None
    with caplog.at_level(logging.INFO, logger="nlpgd"):
        assert resume_point(tmp_path, "x") is None
    assert not caplog.records  # nothing was there: a fit that never started says nothing
    _checkpoint(tmp_path, 3, complete=False)
    with caplog.at_level(logging.INFO, logger="nlpgd"):
        assert resume_point(tmp_path, "x") is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert "checkpoint-3" in line and "no intact checkpoint is left, so this fit starts again" in line
