"""Faces read when a clip is uploaded or recorded, before Analyze: the same result, only for that very file."""
from __future__ import annotations

import os
import shutil
import threading

import pytest

from harness import media

pytestmark = pytest.mark.skipif(not media.have_espeak(), reason="espeak-ng is needed to make speech")


@pytest.fixture(scope="module")
def analyzer():
    from demo.analyzer import Analyzer
    from harness.app_model import model_dir

    return Analyzer.load(model_dir(), warm_up=False)


@pytest.fixture()
def clip(tmp_path):
    path = tmp_path / "clip.mp4"
    shutil.copy(media.clip("face+speech", 3.0, ".mp4"), path)
    return str(path)


def test_analyze_uses_the_faces_read_ahead_and_scores_the_same(analyzer, clip):
    plain = analyzer.analyze(clip).to_json()
    assert analyzer.read_faces_ahead(clip) is not None
    assert analyzer.read_faces_ahead(clip) is None  # already being read
    ahead = analyzer.analyze(clip).to_json()
    assert "vision_wait" in ahead["timings"] and "vision_wait" not in plain["timings"]
    for key in ("scores", "missing", "transcript", "segments", "duration"):
        assert ahead[key] == plain[key], key
    assert "vision_wait" not in analyzer.analyze(clip).to_json()["timings"]  # a read ahead serves one analysis


def test_an_upload_event_while_analyze_reads_the_file_does_not_read_it_again(analyzer, clip):
    with analyzer._faces_read_ahead(clip) as faces:  # what Analyze holds while it extracts the clip itself
        assert faces is None
        assert analyzer.read_faces_ahead(clip) is None  # the upload event, arriving late
    job = analyzer.read_faces_ahead(clip)  # once Analyze is done, the file may be read ahead again
    assert job is not None
    job.result()  # started: a read still queued would be cancelled instead
    with analyzer._faces_read_ahead(clip) as faces:
        assert faces is job


def test_a_read_still_queued_is_cancelled_and_analyze_reads_the_faces_itself(analyzer, clip):
    busy = threading.Event()
    analyzer.features._ahead.submit(busy.wait)  # the single read-ahead worker is busy with another file
    try:
        queued = analyzer.read_faces_ahead(clip)
        result = analyzer.analyze(clip)
    finally:
        busy.set()
    assert queued.cancelled() and "vision_wait" not in result.timings
    assert "V" not in result.missing


def test_a_file_replaced_after_the_read_ahead_is_read_again(analyzer, clip):
    assert analyzer.read_faces_ahead(clip) is not None
    st = os.stat(clip)
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert "vision_wait" not in analyzer.analyze(clip).timings


def test_reads_ahead_are_bounded_and_skip_what_analyze_would_refuse(analyzer, tmp_path):
    from demo.analyzer import AHEAD_CLIPS

    assert analyzer.read_faces_ahead(None) is None
    assert analyzer.read_faces_ahead(str(tmp_path / "not-there.mp4")) is None
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert analyzer.read_faces_ahead(str(empty)) is None
    source = media.clip("face", 1.0, ".mp4")
    for i in range(AHEAD_CLIPS + 3):
        shutil.copy(source, tmp_path / f"c{i}.mp4")
        assert analyzer.read_faces_ahead(str(tmp_path / f"c{i}.mp4")) is not None
    assert len(analyzer._ahead) == AHEAD_CLIPS


@pytest.mark.parametrize("ahead", [False, True])
def test_progress_names_every_stage_with_or_without_a_read_ahead(analyzer, clip, ahead):
    from demo.analyzer import STAGE_LABELS

    if ahead:
        analyzer.read_faces_ahead(clip).result()
    seen = []
    analyzer.analyze(clip, progress=lambda frac, desc: seen.append((frac, desc)))
    descs = [d for _, d in seen]
    assert set(STAGE_LABELS.values()) <= set(descs) and descs[-1] == "Done"
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)
