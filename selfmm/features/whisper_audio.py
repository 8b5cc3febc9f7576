"""Audio frames from Whisper's encoder: the states of Whisper tiny.en (384 numbers, 50 a second) averaged in
groups of POOL, 10 frames a second.

Why: the encoder was trained on a large amount of speech and its states carry how something is said as well as
what. On RAVDESS they separate positive from negative acted emotions of unseen actors far better than the 24
hand-made columns of `audio.py` (docs/features.md; `python -m scripts.probe_whisper_audio`). The app already
loads this model for the transcript, so the features cost no download, and the transcription of the same clip
decodes from their encoder pass of its first window (`asr.SharedEncoderWhisper`) instead of making its own.

Whisper reads 30 s windows: the log-mel input of each window is padded to 3000 frames as Whisper does, and only
the states of the clip's own samples are kept. Clips without audio, too short or silent are reported missing by
the same rules as `audio.py` (`audible_speech`).
"""
from __future__ import annotations

import numpy as np

from .asr import COMPUTE_TYPE, DEFAULT_MODEL_NAME, WINDOW
from .audio import SAMPLE_RATE, audible_speech
from .spec import Extracted, FeatureSpec

DIM = 384  # width of tiny.en's encoder
STATES_PER_SECOND = 50  # one state per two 10 ms log-mel frames
POOL = 5  # states averaged into one frame: 10 frames a second
MEL_FRAMES = 3000  # log-mel frames in one window


def load_encoder_model():
    """The offline Whisper tiny.en (faster-whisper), as the Transcriber loads it by default."""
    import os

    from .asr import _load

    return _load(None, min(4, os.cpu_count() or 1), COMPUTE_TYPE)


class WhisperAudioExtractor:
    """extract(waveform, sample_rate) -> Extracted((T, 384) float32 at 10 frames/s, or None + reason).
    model: a faster_whisper.WhisperModel of the default tiny.en in COMPUTE_TYPE to share (the Transcriber's), or
    None to load one. Another Whisper model would give other features than the spec names."""

    def __init__(self, model=None) -> None:
        self.model = model if model is not None else load_encoder_model()
        self.spec = FeatureSpec(
            name="whisper-encoder", version="1", modality="audio", rate=SAMPLE_RATE,
            hop=SAMPLE_RATE * POOL // STATES_PER_SECOND, fps=STATES_PER_SECOND / POOL, dim=DIM,
            params={"model": DEFAULT_MODEL_NAME, "compute_type": COMPUTE_TYPE, "pool": POOL,
                    "window_seconds": WINDOW // SAMPLE_RATE, "pooling": "mean"})

    def states(self, y: np.ndarray, hand_over: bool = False) -> np.ndarray:
        """Encoder states (n, DIM) of 16 kHz samples, 50 a second, window by window. hand_over: keep the first
        window's encoder output for a transcription of the same samples that follows (the pipeline's)."""
        import ctranslate2

        out = []
        for start in range(0, len(y), WINDOW):
            chunk = y[start:start + WINDOW]
            mel = self.model.feature_extractor(chunk)[:, :MEL_FRAMES]
            mel = np.pad(mel, ((0, 0), (0, MEL_FRAMES - mel.shape[1])))
            enc = self.model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None])),
                                          to_cpu=True)
            if start == 0 and hand_over and hasattr(self.model, "keep"):
                self.model.keep(chunk, enc)
            own = max(1, int(len(chunk) * STATES_PER_SECOND / SAMPLE_RATE))
            out.append(np.asarray(enc, dtype=np.float32)[0, :own])
        return np.concatenate(out)

    def extract(self, waveform: np.ndarray | None, sample_rate: int = SAMPLE_RATE,
                hand_over: bool = False) -> Extracted:
        """hand_over: a transcription of the same samples follows and decodes from this encoder pass."""
        y, stats, missing = audible_speech(waveform, sample_rate)
        if y is None:
            return Extracted(None, missing, stats)
        s = self.states(y, hand_over)
        if s.shape[1] != DIM:
            raise ValueError(f"the Whisper model gives {s.shape[1]}-wide states, the spec says {DIM}")
        n = -(-len(s) // POOL)
        frames = np.stack([s[i * POOL:(i + 1) * POOL].mean(0) for i in range(n)]).astype(np.float32)
        return Extracted(frames, None, stats)
