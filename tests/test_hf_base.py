"""Shared Trainer plumbing: which checkpoint a resume picks."""

from nlpgd.models.hf_base import last_checkpoint


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
    assert "checkpoint-12" in caplog.text and "interrupted while saving" in caplog.text


def test_last_checkpoint_none(tmp_path):
    assert last_checkpoint(tmp_path / "missing") is None
    assert last_checkpoint(tmp_path) is None
    _checkpoint(tmp_path, 3, complete=False)
    assert last_checkpoint(tmp_path) is None
