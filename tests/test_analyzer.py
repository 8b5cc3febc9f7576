"""demo.analyzer's pure parts: one ONNX batch from extracted features, absence marked, sentences sliced."""
import numpy as np

from demo.analyzer import Features, frame_slice, make_batch


def test_make_batch_pads_and_marks_absence():
    ids = np.array([101, 7, 102, 0], np.int64)
    mask = np.array([1, 1, 1, 0], np.int64)
    units = [Features(ids, mask, np.ones((3, 2), np.float32), None),
             Features(None, None, None, np.ones((5, 4), np.float32))]
    b = make_batch(units, text_len=4, audio_dim=2, vision_dim=4)
    assert b["text_ids"].shape == (2, 4) and b["text_mask"][1].sum() == 0
    assert b["audio"].shape == (2, 3, 2) and b["audio_lengths"].tolist() == [3, 0]
    assert b["vision"].shape == (2, 5, 4) and b["vision_lengths"].tolist() == [0, 5]
    assert b["audio"][1].sum() == 0 and b["vision"][0].sum() == 0


def test_make_batch_all_absent_keeps_one_frame():
    b = make_batch([Features(None, None, None, None)], 4, 2, 3)
    assert b["audio"].shape == (1, 1, 2) and b["audio_lengths"][0] == 0


def test_without_drops_modalities():
    u = Features(np.ones(3, np.int64), np.ones(3, np.int64), np.ones((2, 2)), np.ones((2, 2)))
    assert u.present() == {"text": True, "audio": True, "vision": True}
    assert u.without({"vision"}).present() == {"text": True, "audio": True, "vision": False}


def test_frame_slice():
    assert frame_slice(100, 20, 1.0, 2.0) == slice(20, 40)
    assert frame_slice(30, 20, 1.0, 5.0) == slice(20, 30)  # Whisper's end may pass the clip's
    s = frame_slice(10, 10, 3.0, 4.0)
    assert s.start == s.stop  # nothing there
