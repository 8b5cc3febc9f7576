"""demo.limits: what the app accepts (files, durations, text), and the messages it gives otherwise."""
import pytest

from demo.limits import InputError, Limits, check_duration, check_file, check_text, human_bytes, media_kind


def test_file_checks(tmp_path):
    with pytest.raises(InputError, match="not found"):
        check_file(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(InputError, match="empty"):
        check_file(empty)
    big = tmp_path / "big.mp4"
    with open(big, "wb") as f:
        f.truncate(2048)  # sparse: the size is read from the file system, nothing is read
    with pytest.raises(InputError, match=r"too large \(2\.0 KB\); the limit is 1\.0 KB"):
        check_file(big, Limits(max_bytes=1024))
    ok = tmp_path / "voice.WAV"
    ok.write_bytes(b"x")
    assert check_file(ok) == "audio"
    doc = tmp_path / "notes.txt"
    doc.write_bytes(b"x")
    with pytest.raises(InputError, match=r"Unsupported format \(\.txt\)"):
        check_file(doc)


def test_media_kind():
    assert media_kind("a.webm") == "video" and media_kind("a.mp3") == "audio"
    with pytest.raises(InputError, match="without extension"):
        media_kind("README")


@pytest.mark.parametrize("seconds,ok", [(0.49, False), (0.5, True), (60.0, True), (60.1, False)])
def test_duration_limits(seconds, ok):
    if ok:
        check_duration(seconds)
    else:
        with pytest.raises(InputError, match="too short" if seconds < 1 else "too long"):
            check_duration(seconds)


def test_text_limit():
    assert check_text("  hi  ") == "hi" and check_text(None) == ""
    with pytest.raises(InputError, match="too long"):
        check_text("x" * 1001)


def test_human_bytes():
    assert human_bytes(10) == "10 bytes" and human_bytes(50 * 1024 * 1024) == "50.0 MB"
