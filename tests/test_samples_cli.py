"""`fingercount samples remove|export`: mistakes are one-line errors that change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.cli import main
from edge.samples import SampleStore
from tests.test_samples import files_of, hand


def samples_cli(tmp: Path, *argv: str) -> int:
    return main(["samples", *argv, "--state-dir", str(tmp / "state")])


def store_with(tmp: Path, **labels: int) -> dict[str, bytes]:
    with SampleStore(tmp / "state") as store:
        for label, n in labels.items():
            for i in range(n):
                store.add(hand("2", i), label)
    return files_of(tmp / "state")


def test_removing_a_label_that_does_not_exist_is_an_error_naming_the_labels(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    before = store_with(tmp_path, **{"2": 2, "none": 1})
    assert samples_cli(tmp_path, "remove", "--label", "nonexist") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "fingercount: error: no label 'nonexist' in the sample store (labels: 2, none)"]
    assert files_of(tmp_path / "state") == before
    # an existing label is still removed, and removing it again is then the same error
    assert samples_cli(tmp_path, "remove", "--label", "none") == 0
    assert capsys.readouterr().out == "removed 1 samples of label none; 2: 2 left\n"
    assert samples_cli(tmp_path, "remove", "--label", "none", "--json") == 2
    assert capsys.readouterr().err == "fingercount: error: no label 'none' in the sample store (labels: 2)\n"


def test_removing_from_an_empty_store_says_there_are_no_labels(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert samples_cli(tmp_path, "remove", "--label", "3") == 2
    assert capsys.readouterr().err == ("fingercount: error: no label '3' in the sample store "
                                       "(labels: none stored)\n")


def test_a_label_folder_without_indexed_samples_can_still_be_removed(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store_with(tmp_path, **{"2": 1})
    (tmp_path / "state" / "samples" / "left").mkdir()  # e.g. only a stray file left in it
    (tmp_path / "state" / "samples" / "left" / "notes.txt").write_text("x")
    assert samples_cli(tmp_path, "remove", "--label", "left") == 0
    assert capsys.readouterr().out == "removed 0 samples of label left; 2: 1 left\n"
    assert not (tmp_path / "state" / "samples" / "left").exists()


def test_export_into_the_sample_store_is_refused_before_copying(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    before = store_with(tmp_path, **{"2": 2, "3": 1})
    monkeypatch.chdir(tmp_path)  # the tester's relative path
    assert samples_cli(tmp_path, "export", "state/samples/newdir") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "fingercount: error: state/samples/newdir is inside the sample store's folder "
        f"{tmp_path / 'state' / 'samples'}: export into a folder outside it"]
    assert files_of(tmp_path / "state") == before
    assert sorted(p.name for p in (tmp_path / "state" / "samples").iterdir()) == ["2", "3"]
    assert samples_cli(tmp_path, "export", "state") == 2
    assert "state contains the sample store's folder" in capsys.readouterr().err
    assert samples_cli(tmp_path, "export", "ds") == 0
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["2", "3"]


def test_one_mislabelled_sample_is_removed_by_path_or_sha256(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store_with(tmp_path, **{"2": 3})
    with SampleStore(tmp_path / "state") as store:
        first, second, third = store.list()
    assert samples_cli(tmp_path, "remove", "--sample", first.sha256[:10]) == 0
    assert capsys.readouterr().out == f"removed {first.path} (label 2); 2: 2 left\n"
    monkeypatch.chdir(second.path.parent)  # a path as the user types it, relative
    assert samples_cli(tmp_path, "remove", "--sample", second.path.name, "--json") == 0
    assert '"removed": 1' in capsys.readouterr().out
    assert not first.path.exists() and not second.path.exists() and third.path.is_file()
    with SampleStore(tmp_path / "state") as store:
        assert [s.sha256 for s in store.list()] == [third.sha256] and store.recovered["rows_removed"] == 0
    for ref, why in [(first.sha256[:10], "no sample"), ("abc", "no sample"), (str(tmp_path), "no sample")]:
        assert samples_cli(tmp_path, "remove", "--sample", ref) == 2
        assert why in capsys.readouterr().err
    assert samples_cli(tmp_path, "remove", "--sample", third.sha256, "--label", "2") == 2
    assert "not both" in capsys.readouterr().err and third.path.is_file()
