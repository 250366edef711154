"""The durable sample store: layout, labels, recovery, export, SIGKILL and disk-full behaviour."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import SampleError
from edge.samples import INDEX_FILE, SampleStore, validate_label
from tests.conftest import HANDS, ROOT, fill_filesystem, mount_tmpfs, small_disk, umount


def hand(label: str = "3", i: int = 0) -> np.ndarray:
    p = sorted((HANDS / label).glob("*.JPG"))[i]
    return cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)


def raw_state(state: Path) -> tuple[dict[str, str], dict[str, Path], list[Path]]:
    """(rows path->sha256, final files rel->path, temp files) read directly, without SampleStore."""
    rows: dict[str, str] = {}
    db = state / INDEX_FILE
    if db.exists():
        con = sqlite3.connect(db)
        rows = dict(con.execute("SELECT path, sha256 FROM samples"))
        con.close()
    finals: dict[str, Path] = {}
    temps: list[Path] = []
    root = state / "samples"
    if root.exists():
        for f in root.glob("*/*"):
            if f.name.endswith(".tmp"):
                temps.append(f)
            else:
                finals[f"{f.parent.name}/{f.name}"] = f
    return rows, finals, temps


def test_layout_index_and_counts(tmp_path: Path) -> None:
    with SampleStore(tmp_path) as store:
        s = store.add(hand("3"), "3", source="test")
        store.add(hand("3", 1), "3")
        store.add(hand("0"), "none")
        assert store.counts() == {"3": 2, "none": 1}
        assert s.path.parent == tmp_path / "samples" / "3"
        assert s.path.name.endswith(".jpg") and s.path.name[:8].isdigit()
        assert hashlib.sha256(s.path.read_bytes()).hexdigest() == s.sha256
        back = store.read_frame(s)
        assert back.shape == hand("3").shape
        # JPEG round trip is close to the original frame
        assert np.abs(back.astype(int) - hand("3").astype(int)).mean() < 6
    con = sqlite3.connect(tmp_path / INDEX_FILE)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = con.execute("SELECT label, path, sha256, source, time FROM samples WHERE id = ?", (s.id,)).fetchone()
    assert row[0] == "3" and row[2] == s.sha256 and row[3] == "test" and row[4].endswith("+00:00")
    # reopening sees the same samples and repairs nothing
    with SampleStore(tmp_path) as store:
        assert store.counts() == {"3": 2, "none": 1}
        assert not any(store.recovered.values())


@pytest.mark.parametrize("bad", ["", "a/b", "..", "a.b", "x" * 33, "with space", "ü", "../etc", None, 3])
def test_bad_labels_refused(tmp_path: Path, bad: object) -> None:
    with pytest.raises(SampleError):
        validate_label(bad)
    with SampleStore(tmp_path) as store:
        with pytest.raises(SampleError):
            store.add(hand(), bad)  # type: ignore[arg-type]
        assert len(store) == 0
    assert list((tmp_path / "samples").iterdir()) == []


@pytest.mark.parametrize("bad", ["3\n", "none\n", "3\r\n", "\n", "-rf", "--help", "-"])
def test_a_label_ending_in_a_newline_or_read_as_an_option_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(SampleError, match="may only contain letters"):
        validate_label(bad)
    with SampleStore(tmp_path) as store:
        with pytest.raises(SampleError):
            store.add(hand(), bad)
        assert len(store) == 0
    assert list((tmp_path / "samples").iterdir()) == []


def test_a_folder_an_older_version_made_for_an_invalid_label_is_skipped_not_deleted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with SampleStore(tmp_path) as store:
        good = store.add(hand("3"), "3")
    # what a version that accepted "3\n" left: its folder, a sample in it and that sample's row
    bad_dir = tmp_path / "samples" / "3\n"
    bad_dir.mkdir()
    bad = bad_dir / good.path.name.replace("-1.jpg", "-2.jpg")
    shutil.copyfile(good.path, bad)
    orphan = bad_dir / "20260101T000000000000Z-99999999-7.jpg"  # and one without a row
    shutil.copyfile(good.path, orphan)
    con = sqlite3.connect(tmp_path / INDEX_FILE)
    with con:
        con.execute("INSERT INTO samples(label, path, sha256, source, time) VALUES (?,?,?,?,?)",
                    ("3\n", f"3\n/{bad.name}", good.sha256, "mqtt", good.time))
    con.close()
    for _ in range(2):  # and again: still there, still skipped
        caplog.clear()
        with SampleStore(tmp_path) as store:
            assert store.counts() == {"3": 1}
            assert [s.path for s in store.list()] == [good.path]
            assert not any(store.recovered.values())
            assert store.export(tmp_path / f"ds{_}") == {"3": 1}
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1 and "\n" not in warnings[0], warnings
        assert "skipping the folder '3\\n'" in warnings[0] and "left in place" in warnings[0]
        assert bad.read_bytes() == orphan.read_bytes() == good.path.read_bytes()  # not deleted
    # renamed to a valid label, its files are samples again
    bad_dir.rename(tmp_path / "samples" / "three")
    with SampleStore(tmp_path) as store:
        assert store.counts() == {"3": 1, "three": 2}


def test_good_labels() -> None:
    for ok in ["0", "5", "none", "thumbs_up", "peace-sign", "x" * 32]:
        assert validate_label(ok) == ok


def test_export_is_a_class_folder_dataset(tmp_path: Path) -> None:
    with SampleStore(tmp_path / "state") as store:
        for i in range(3):
            store.add(hand("2", i), "2")
        store.add(hand("0"), "none")
        out = store.export(tmp_path / "ds")
    assert out == {"2": 3, "none": 1}
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["2", "none"]
    assert len(list((tmp_path / "ds" / "2").glob("*.jpg"))) == 3
    for f in (tmp_path / "ds").glob("*/*.jpg"):
        assert cv2.imread(str(f)) is not None


def test_export_refuses_a_used_folder_so_removed_samples_cannot_come_back(tmp_path: Path) -> None:
    with SampleStore(tmp_path / "state") as store:
        store.add(hand("2"), "2")
        store.add(hand("3"), "3")
        store.export(tmp_path / "ds")
        store.remove_label("2")
        with pytest.raises(SampleError, match="not empty: export into a new or empty folder"):
            store.export(tmp_path / "ds")
        (tmp_path / "empty").mkdir()
        assert store.export(tmp_path / "empty") == {"3": 1}
        (tmp_path / "file").write_text("x")
        with pytest.raises(SampleError, match="is not a folder"):
            store.export(tmp_path / "file")


def test_export_refuses_the_store_itself_a_folder_inside_it_or_around_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with SampleStore(state) as store:
        store.add(hand("2"), "2")
        before = files_of(state)
        (tmp_path / "link").symlink_to(store.root)
        for dest, how in [(store.root / "newdir", "is inside"), (store.root / "2", "is inside"),
                          (store.root / "a" / "b", "is inside"), (tmp_path / "link" / "x", "is inside"),
                          (store.root, "is"), (store.root / "2" / "..", "is"),
                          (state, "contains"), (tmp_path, "contains")]:
            with pytest.raises(SampleError) as e:
                store.export(dest)
            assert str(e.value) == (f"{dest} {how} the sample store's folder {store.root}: "
                                    "export into a folder outside it")
        assert files_of(state) == before and sorted(p.name for p in store.root.iterdir()) == ["2"]
        assert store.counts() == {"2": 1}
        assert store.export(state / "export") == {"2": 1}  # beside the store is fine


def test_recovery_on_open(tmp_path: Path) -> None:
    with SampleStore(tmp_path) as store:
        kept = store.add(hand("1"), "1")
        lost = store.add(hand("1", 1), "1")
    lost.path.unlink()  # row without its file
    dead = subprocess.Popen(["true"])  # names carry the writer's pid: use one that has exited
    dead.wait()
    pid = dead.pid
    ok, buf = cv2.imencode(".jpg", hand("4"))
    orphan = tmp_path / "samples" / "4" / f"20260101T000000000000Z-{pid}-1.jpg"
    orphan.parent.mkdir()
    orphan.write_bytes(buf.tobytes())  # complete file whose row never got written
    junk = tmp_path / "samples" / "4" / f"20260101T000000000000Z-{pid}-2.jpg"
    junk.write_bytes(b"\xff\xd8 not a jpeg")  # cannot happen via add(); removed if found
    temp = tmp_path / "samples" / "1" / f".20260101T000000000000Z-{pid}-3.jpg.tmp"
    temp.write_bytes(buf.tobytes()[:100])
    with SampleStore(tmp_path) as store:
        assert store.recovered == {"temp_removed": 1, "rows_removed": 1, "files_indexed": 1, "files_removed": 1}
        assert store.counts() == {"1": 1, "4": 1}
        paths = {s.path for s in store.list()}
        assert paths == {kept.path, orphan}
        assert next(s for s in store.list("4")).source == "recovered"
    assert not temp.exists() and not junk.exists()


_KILL_CHILD = textwrap.dedent("""
    import os, sys, time, numpy as np
    sys.path.insert(0, {root!r})
    from edge.samples import SampleStore
    # an SD card's fsync (tens of ms) rather than tmpfs's: the window in which a temporary
    # file exists is then a good share of each capture, so random kills land inside it
    _fsync = os.fsync
    os.fsync = lambda fd: (time.sleep(0.03), _fsync(fd))[1]
    store = SampleStore(sys.argv[1])
    rng = np.random.default_rng(int(sys.argv[2]))
    i = 0
    while True:
        # noise compresses badly: ~1 MB JPEGs, so kills land inside writes and fsyncs
        frame = rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)
        s = store.add(frame, "ab"[i % 2], source="kill-test")
        print("ACK", s.path.parent.name + "/" + s.path.name, s.sha256, flush=True)
        i += 1
""")


def test_sigkill_never_leaves_partial_samples(tmp_path: Path) -> None:
    """30 real processes killed with SIGKILL at random moments while capturing."""
    state = tmp_path / "state"
    script = tmp_path / "child.py"
    script.write_text(_KILL_CHILD.format(root=str(ROOT)))
    rnd = random.Random(1234)
    acked: dict[str, str] = {}
    interrupted_writes = 0
    for k in range(30):
        child = subprocess.Popen([sys.executable, str(script), str(state), str(k)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # wait for the first ack half of the time, so some kills hit steady-state writing
        if k % 2 == 0:
            child.stdout.readline()
        time.sleep(rnd.uniform(0.0, 0.3))
        child.kill()
        out, err = child.communicate()
        assert child.returncode == -9, err
        for line in out.splitlines():
            if line.startswith("ACK "):
                _, rel, sha = line.split()
                acked[rel] = sha
        rows, finals, temps = raw_state(state)
        interrupted_writes += bool(temps)  # this kill landed inside a write
        # every row has its complete file
        for rel, sha in rows.items():
            assert rel in finals, f"kill {k}: index row without file {rel}"
            assert hashlib.sha256(finals[rel].read_bytes()).hexdigest() == sha, f"kill {k}: {rel} partial"
        # a final-named file without a row (killed between rename and insert) is still complete
        for rel in set(finals) - set(rows):
            assert finals[rel].read_bytes()[-2:] == b"\xff\xd9", f"kill {k}: partial file {rel}"
        # everything acknowledged survived
        for rel, sha in acked.items():
            assert rows.get(rel) == sha, f"kill {k}: acknowledged sample {rel} lost"
    assert len(acked) >= 10, "the children should have stored samples between kills"
    assert interrupted_writes >= 3, "kills should have landed inside writes (temp files left behind)"
    with SampleStore(state) as store:
        rows, finals, temps = raw_state(state)
        assert temps == []
        assert set(rows) == set(finals)
        assert len(store) == len(rows) >= len(acked)


_FULL_CHILD = textwrap.dedent("""
    import resource, signal, sys, numpy as np
    sys.path.insert(0, {root!r})
    from edge.errors import SampleError
    from edge.samples import SampleStore
    store = SampleStore(sys.argv[1])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so the kernel returns EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    rng = np.random.default_rng(0)
    small = np.full((48, 64, 3), 128, np.uint8)
    print("small ok", store.add(small, "a").path.name, flush=True)
    try:
        store.add(rng.integers(0, 256, (600, 800, 3), dtype=np.uint8), "a")
        print("big stored?!")
    except SampleError as e:
        print("REFUSED", e)
    print("small again ok", store.add(small, "a").path.name, flush=True)
""")


def test_file_size_limit_refuses_and_leaves_nothing(tmp_path: Path) -> None:
    """RLIMIT_FSIZE in a real subprocess: the kernel answers the write with EFBIG."""
    script = tmp_path / "child.py"
    script.write_text(_FULL_CHILD.format(root=str(ROOT)))
    state = tmp_path / "state"
    r = subprocess.run([sys.executable, str(script), str(state)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "REFUSED sample refused: file size limit reached" in r.stdout, r.stdout
    assert "small again ok" in r.stdout
    rows, finals, temps = raw_state(state)
    assert temps == [] and set(rows) == set(finals) and len(rows) == 2


def test_disk_full_refuses_and_leaves_nothing(tmp_path: Path) -> None:
    """A real full filesystem: a 1 MB tmpfs (needs root; otherwise the RLIMIT test covers EFBIG)."""
    mnt = tmp_path / "small"
    if not mount_tmpfs(mnt, "1m"):
        pytest.fail("cannot mount a tmpfs here (needs root and mount permission); "
                    "run the tests as root, e.g. in the CI container: sudo make test")
    try:
        rng = np.random.default_rng(0)
        with SampleStore(mnt / "state") as store:
            stored = 0
            with pytest.raises(SampleError, match="disk full"):
                for _ in range(50):
                    store.add(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), "a")
                    stored += 1
            assert stored >= 1
            rows, finals, temps = raw_state(mnt / "state")
            assert temps == [] and set(rows) == set(finals) and len(rows) == stored
            # freeing space makes the store usable again
            store.remove_label("a")
            store.add(hand("2"), "2")
            assert store.counts() == {"2": 1}
    finally:
        umount(mnt)


def test_opening_beside_a_live_writer_keeps_its_samples(tmp_path: Path) -> None:
    """A CLI command opening the store while the daemon (another live process) has written to it."""
    code = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {str(ROOT)!r})
        from edge.samples import SampleStore
        store = SampleStore(sys.argv[1])
        for i in range(3):
            store.add(np.full((32, 32, 3), i * 50, np.uint8), "a")
        print("done", flush=True)
        sys.stdin.readline()  # stay alive until told
    """)
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "done"
        with SampleStore(tmp_path) as store:
            assert store.counts() == {"a": 3}
            assert not any(store.recovered.values())
    finally:
        child.communicate("\n", timeout=10)


@pytest.mark.parametrize("damage", ["not-a-database", "damaged-page"])
def test_a_damaged_index_is_rebuilt_from_the_class_folders(tmp_path: Path, damage: str) -> None:
    with SampleStore(tmp_path) as store:
        for lab in ("2", "3"):
            for i in range(3):
                store.add(hand(lab, i), lab, source="test")
        times = {s.path: s.time for s in store.list()}
    index = tmp_path / INDEX_FILE
    data = bytearray(index.read_bytes())
    if damage == "not-a-database":
        data[:] = random.Random(1).randbytes(len(data))
    else:  # a b-tree page overwritten (the first page stays a valid header)
        data[4096:8192] = random.Random(2).randbytes(4096)
    index.write_bytes(bytes(data))
    with SampleStore(tmp_path) as store:
        assert store.counts() == {"2": 3, "3": 3}
        assert {s.source for s in store.list()} == {"recovered"}  # the files do not hold it
        assert {s.path: s.time for s in store.list()} == times  # their names hold the time
        assert store.recovered["index_replaced"] == 1 and store.recovered["files_indexed"] == 6
        store.add(hand("4"), "4", source="test")  # and it takes new samples
    aside = list(tmp_path.glob(f"{INDEX_FILE}.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == bytes(data)  # kept for a post-mortem
    with SampleStore(tmp_path) as store:
        assert store.counts() == {"2": 3, "3": 3, "4": 1} and "index_replaced" not in store.recovered


def test_a_card_that_keeps_damaging_the_index_keeps_three_copies(tmp_path: Path) -> None:
    # Each damaged index is moved aside; without pruning a failing card fills up with them,
    # and two in the same second must not overwrite each other.
    with SampleStore(tmp_path) as store:
        store.add(hand("2"), "2", source="test")
    index = tmp_path / INDEX_FILE
    for n in range(5):
        index.write_bytes(b"torn %d " % n * 500)
        with SampleStore(tmp_path) as store:
            assert store.counts() == {"2": 1} and store.recovered["index_replaced"] == 1
    aside = sorted(p for p in tmp_path.glob(f"{INDEX_FILE}.corrupt-*") if not p.name.endswith(("-wal", "-shm")))
    assert sorted(p.read_bytes()[:6] for p in aside) == [b"torn 2", b"torn 3", b"torn 4"]


def test_the_store_quota_refuses_and_counts_what_others_removed(tmp_path: Path) -> None:
    with SampleStore(tmp_path) as probe:
        size = probe.add(hand("2", 0), "2").path.stat().st_size
        probe.remove_label("2")
    limit_mb = 4.5 * size / 1e6  # room for four samples of about this size
    with SampleStore(tmp_path, max_mb=limit_mb) as store:
        stored = 0
        with pytest.raises(SampleError, match="sample store is full") as refused:
            for i in range(10):
                store.add(hand("2", i % 3), "2" if i < 2 else "3")
                stored += 1
        assert 3 <= stored <= 5 and "samples remove --label" in str(refused.value)
        rows, finals, temps = raw_state(tmp_path)
        assert len(rows) == len(finals) == stored and temps == []  # nothing partial
        with SampleStore(tmp_path) as other:  # e.g. `fingercount samples remove` beside the daemon
            assert other.remove_label("3") == stored - 2
        store.add(hand("4"), "4")  # the quota sees the room another process made
        assert store.counts() == {"2": 2, "4": 1}


def test_a_small_quota_reports_the_store_size_as_precisely_as_the_limit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    with SampleStore(tmp_path, max_mb=0.015) as store:  # the tester's limit: a few small samples
        with pytest.raises(SampleError, match="sample store is full") as refused:
            for _ in range(20):
                store.add(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), "2")
        stored = sum(len(b) for b in files_of(tmp_path).values())
    assert 0 < stored <= 15000
    assert f"({stored / 1e6:.3f} MB; samples.max_mb is 0.015): export what you need" in str(refused.value)


def test_min_free_keeps_room_on_the_disk(tmp_path: Path) -> None:
    with small_disk(tmp_path / "small", "3m") as mnt:
        with SampleStore(mnt, min_free_mb=2.5) as store:
            stored = 0
            with pytest.raises(SampleError, match="disk is almost full") as refused:
                for i in range(200):
                    store.add(np.random.default_rng(i).integers(0, 255, (240, 320, 3), np.uint8), "5")
                    stored += 1
            assert stored > 0 and "samples.min_free_mb keeps 2.5 MB" in str(refused.value)
            free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
            assert free >= 2.4e6  # refused before the disk was full, not by it
        rows, finals, temps = raw_state(mnt)
        assert len(rows) == len(finals) == stored and temps == []


def test_a_removal_cut_short_is_finished_at_open_not_resurrected(tmp_path: Path) -> None:
    with SampleStore(tmp_path) as store:
        for i in range(3):
            store.add(hand("3", i), "3")
        store.add(hand("2"), "2")
    # a power cut after the rename of remove_label, before its rows were deleted
    (tmp_path / "samples" / "3").rename(tmp_path / "samples" / ".removing-3-999")
    with SampleStore(tmp_path) as store:
        assert store.counts() == {"2": 1}
        assert store.recovered["rows_removed"] == 3 and store.recovered["files_indexed"] == 0
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["2"]


def leave_free(mnt: Path, nbytes: int) -> Path:
    """Fill the filesystem, then give nbytes (whole pages) of it back; returns the filler."""
    filler = mnt / "filler"
    fill_filesystem(mnt)
    os.truncate(filler, max(0, filler.stat().st_size - nbytes))
    return filler


def lost_index_on_a_nearly_full_disk(mnt: Path, label: str, n: int, free: int) -> tuple[Path, Path]:
    """n complete sample files of `label` under mnt/state without an index (lost; their
    writer long gone: no such pid), then the disk filled to `free` bytes: room to open a
    new index, not to write its n rows. Returns (state dir, filler)."""
    folder = mnt / "state" / "samples" / label
    folder.mkdir(parents=True)
    jpg = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes()
    for i in range(n):
        (folder / f"20260101T000000{i:06d}Z-99999999-{i}.jpg").write_bytes(jpg)
    return mnt / "state", leave_free(mnt, free)


def files_of(state: Path) -> dict[str, bytes]:
    return {f"{p.parent.name}/{p.name}": p.read_bytes() for p in (state / "samples").glob("*/*.jpg")}


def test_a_repair_on_a_nearly_full_disk_is_one_line_and_loses_nothing(tmp_path: Path) -> None:
    """The tester's recipe (D1), swept over the free space: 5 samples, one file deleted, the
    disk filled to 0-96 KB free. Somewhere in that band the index opens but the repair
    cannot be written; every open must then be a SampleError, never sqlite3's own error."""
    snap = tmp_path / "snap"
    with SampleStore(snap) as store:
        for i in range(5):
            store.add(hand("1", i), "1")
    next((snap / "samples" / "1").iterdir()).unlink()  # a row without its file
    kept = files_of(snap)
    mnt = tmp_path / "small"
    if not mount_tmpfs(mnt, "300k"):
        pytest.fail("cannot mount a tmpfs here (needs root and mount permission)")
    outcomes: dict[int, str] = {}
    try:
        for kb in range(0, 100, 4):
            state = mnt / "state"
            shutil.rmtree(state, ignore_errors=True)
            (mnt / "filler").unlink(missing_ok=True)
            shutil.copytree(snap, state)
            filler = leave_free(mnt, kb << 10)
            try:
                with SampleStore(state) as store:
                    assert store.counts() == {"1": 4}
                outcomes[kb] = "opened"
            except SampleError as e:
                assert str(e).startswith(f"cannot open the sample store in {state}: disk full"), e
                outcomes[kb] = "refused"
            assert files_of(state) == kept, kb  # no sample lost or changed
            filler.unlink()
            with SampleStore(state) as store:  # with room, the repair is done
                assert store.counts() == {"1": 4}
    finally:
        umount(mnt)
    assert set(outcomes.values()) == {"opened", "refused"}, outcomes


def test_an_index_rebuild_without_room_keeps_every_sample(tmp_path: Path) -> None:
    """A lost index and a card with room to open a new one but not to fill it: the rebuild
    (one transaction) is refused with one line, and every file stays for the next open."""
    with small_disk(tmp_path / "small", "12m") as mnt:
        state, filler = lost_index_on_a_nearly_full_disk(mnt, "1", 2000, 128 << 10)
        kept = files_of(state)
        with pytest.raises(SampleError, match="disk full"):
            SampleStore(state)
        assert files_of(state) == kept
        filler.unlink()
        with SampleStore(state) as store:
            assert store.counts() == {"1": 2000} and store.recovered["files_indexed"] == 2000
            # the capture time is in the file name, so a rebuild keeps it
            assert store.list()[3].time == "2026-01-01T00:00:00.000003+00:00"


def test_removing_a_label_on_a_full_disk_makes_room_first(tmp_path: Path) -> None:
    """docs/raspberry-pi.md's remedy for a full card: the files go first, then the rows."""
    with small_disk(tmp_path / "small", "1m") as mnt:
        with SampleStore(mnt / "state") as store:
            for i in range(4):
                store.add(hand("2", i), "2")
            store.add(hand("3"), "3")
            three = files_of(mnt / "state")
            fill_filesystem(mnt)
            assert store.remove_label("2") == 4
            assert store.counts() == {"3": 1}
        rows, finals, temps = raw_state(mnt / "state")
        assert set(rows) == set(finals) and temps == []
        assert files_of(mnt / "state") == {k: v for k, v in three.items() if k.startswith("3/")}


def test_export_to_a_full_disk_says_how_far_it_got_and_leaves_no_partial_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    with SampleStore(tmp_path / "state") as store:
        for _ in range(10):
            store.add(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), "4")  # ~25 KB each
        with small_disk(tmp_path / "small", "100k") as mnt:
            with pytest.raises(SampleError) as refused:
                store.export(mnt / "ds")
            done = sorted((mnt / "ds" / "4").iterdir())
            assert done and all(not p.name.endswith(".tmp") for p in done), done
            assert f"failed after {len(done)} of 10 samples (4: {len(done)} exported)" in str(refused.value)
            assert "No space left on device" in str(refused.value)


def test_a_read_only_state_dir_is_called_that_not_a_full_disk(tmp_path: Path) -> None:
    # A small read-only filesystem (an SD card the kernel remounted read-only after errors)
    # was reported as "disk full (102400 bytes free)": the wrong thing to go and fix.
    with small_disk(tmp_path / "ro", "100k") as disk:
        assert subprocess.run(["mount", "-o", "remount,ro", str(disk)]).returncode == 0
        with pytest.raises(SampleError) as e:
            SampleStore(disk / "state")
        assert "disk full" not in str(e.value) and "not writable" in str(e.value), str(e.value)


def test_new_labels_stop_at_max_labels(tmp_path: Path) -> None:
    # anyone on the broker can invent labels: 200 captures made 200 classes and a Home
    # Assistant select of 200 options
    with SampleStore(tmp_path, max_labels=2) as store:
        store.add(hand("2"), "2")
        store.add(hand("3"), "none")
        with pytest.raises(SampleError, match="the store has 2 labels, samples.max_labels is 2"):
            store.add(hand("3", 1), "wave")
        store.add(hand("3", 2), "none")  # a known label still takes samples
        assert store.counts() == {"2": 1, "none": 2} and not (tmp_path / "samples" / "wave").exists()
        store.remove_label("2")
        store.add(hand("3", 1), "wave")
