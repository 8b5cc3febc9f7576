"""demo.ui's pure parts: which input a press of Analyze uses."""
import numpy as np



def test_pick_media_prefers_the_active_tab():
    from demo.ui import pick_media

    mic = (44100, np.zeros(10, np.int16))
    assert pick_media("microphone", "cam.webm", mic, None) == (mic, "the microphone recording")
    assert pick_media("webcam", "cam.webm", mic, "up.mp4") == ("cam.webm", "the video")
    assert pick_media("webcam", None, None, "up.mp4") == ("up.mp4", "the uploaded file")
    assert pick_media("upload", None, None, None) == (None, "the typed text")
