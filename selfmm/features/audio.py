"""Frame-level acoustic features of speech with librosa: 16 kHz, 64 ms windows every 50 ms (20 frames/s).

What carries affect in a voice: pitch and how it moves (f0, voicing), loudness and how it moves (RMS energy),
the spectral envelope (MFCCs), brightness and noisiness (spectral centroid, bandwidth, roll-off, flatness,
zero-crossing rate). Pitch comes from YIN (fast; pYIN is ~100x slower) with a voicing strength from the
normalised autocorrelation at YIN's period. Every column has a fixed scale so that all are O(1) for the LSTM
(see COLUMNS). A clip without audio, shorter than MIN_SECONDS or silent is reported missing, never zeros.

librosa JIT-compiles numba code on first use (about 20 s in a fresh environment): NUMBA_CACHE_DIR is pointed
at a writable cache folder before librosa is imported, and `warm_up()` runs everything once.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .spec import Extracted, FeatureSpec


def _ensure_numba_cache() -> None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "selfmm" / "numba"
    try:
        base.mkdir(parents=True, exist_ok=True)
        probe = base / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError:
        base = Path(tempfile.gettempdir()) / "selfmm-numba"
        base.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(base)


_ensure_numba_cache()
import librosa  # noqa: E402  (after NUMBA_CACHE_DIR is set)

SAMPLE_RATE = 16000
FRAME_LENGTH = 1024  # 64 ms: two periods of the lowest pitch (60 Hz) fit in YIN's window
HOP_LENGTH = 800  # 50 ms -> 20 frames per second
N_MELS = 40
N_MFCC = 13  # mfcc_1..mfcc_13; mfcc_0 (overall level) is left out, log_rms carries loudness
FMIN, FMAX = 60.0, 500.0  # speech pitch range searched by YIN
VOICING_THRESHOLD = 0.5  # normalised autocorrelation above which a frame counts as voiced
# A clip whose loudest 5% of frames stay below this is silent (quiet RAVDESS speech peaks near -55 dBFS).
SILENCE_DBFS = -60.0
MIN_SECONDS = 0.25
F0_REF = 50.0  # f0_oct = log2(f0 / 50 Hz): 1..3 for speech, 0 when unvoiced

COLUMNS = (
    "f0_oct",  # log2(f0 / 50 Hz) from YIN; 0 in unvoiced frames
    "f0_delta",  # change of f0_oct from the previous frame (0 unless both voiced)
    "voicing",  # normalised autocorrelation at YIN's period, 0..1
    "voiced",  # 1 if voicing >= 0.5 and the frame is not silent, else 0
    "log_rms",  # log10 of the RMS amplitude (full scale = 0; -5 = digital silence)
    "log_rms_delta",  # change of log_rms from the previous frame
    *(f"mfcc_{i}" for i in range(1, N_MFCC + 1)),  # MFCCs 1..13 (40 mel bands, ortho DCT) / 100
    "spectral_centroid_khz",
    "spectral_bandwidth_khz",
    "spectral_rolloff_khz",  # 85% energy roll-off
    "log_spectral_flatness",  # log10 of Wiener entropy, -6..0 (0 = white noise)
    "zero_crossing_rate",  # crossings per sample, 0..1
)


def _nccf_at(frames: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of each frame (F, N) with itself shifted by its lag (F,), best of lag-1..+1."""
    n = frames.shape[1]
    spec = np.fft.rfft(frames, n=2 * n, axis=1)
    acf = np.fft.irfft(spec * np.conj(spec), axis=1)[:, :n]
    energy = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    best = np.zeros(len(frames))
    rows = np.arange(len(frames))
    for d in (-1, 0, 1):
        lag = np.clip(lags + d, 1, n - 1)
        head = energy[rows, n - lag]  # energy of x[0 : n-lag]
        tail = energy[rows, n] - energy[rows, lag]  # energy of x[lag : n]
        r = acf[rows, lag] / np.sqrt(head * tail + 1e-12)
        best = np.maximum(best, r)
    return np.clip(best, 0.0, 1.0)


def audible_speech(waveform: np.ndarray | None, sample_rate: int = SAMPLE_RATE
                   ) -> tuple[np.ndarray | None, dict, str | None]:
    """(16 kHz float32 samples, stats, None), or (None, stats, why the audio counts as missing): no audio,
    shorter than MIN_SECONDS, or silent. Every audio extractor applies the same rules, so a model never sees
    frames of a clip that another extractor would call missing."""
    if waveform is None:
        return None, {}, "no audio track"
    y = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if sample_rate != SAMPLE_RATE:
        y = librosa.resample(y, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
    seconds = len(y) / SAMPLE_RATE
    if seconds < MIN_SECONDS:
        return None, {"seconds": seconds}, f"audio too short ({seconds:.2f} s < {MIN_SECONDS} s)"
    if not np.all(np.isfinite(y)):
        y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    rms = librosa.feature.rms(y=y, frame_length=FRAME_LENGTH, hop_length=HOP_LENGTH, center=True)[0]
    loud_dbfs = 20 * np.log10(np.percentile(rms, 95) + 1e-10)
    stats = {"seconds": round(seconds, 3), "loudest_dbfs": round(float(loud_dbfs), 1)}
    if loud_dbfs < SILENCE_DBFS:
        return None, stats, f"silence (loudest frames at {loud_dbfs:.0f} dBFS < {SILENCE_DBFS:.0f})"
    return y, stats, None


class AudioExtractor:
    """extract(waveform, sample_rate) -> Extracted((T, 24) float32 at 20 frames/s, or None + reason)."""

    def __init__(self) -> None:
        self.spec = FeatureSpec(
            name="selfmm-audio", version="1", modality="audio", rate=SAMPLE_RATE, hop=HOP_LENGTH,
            fps=SAMPLE_RATE / HOP_LENGTH, dim=len(COLUMNS), columns=COLUMNS,
            params={"frame_length": FRAME_LENGTH, "n_mels": N_MELS, "fmin": FMIN, "fmax": FMAX,
                    "pitch": "yin", "voicing_threshold": VOICING_THRESHOLD, "silence_dbfs": SILENCE_DBFS,
                    "mfcc_scale": 0.01, "center": True})

    def extract(self, waveform: np.ndarray | None, sample_rate: int = SAMPLE_RATE) -> Extracted:
        y, stats, missing = audible_speech(waveform, sample_rate)
        if y is None:
            return Extracted(None, missing, stats)
        rms = librosa.feature.rms(y=y, frame_length=FRAME_LENGTH, hop_length=HOP_LENGTH, center=True)[0]
        power = np.abs(librosa.stft(y, n_fft=FRAME_LENGTH, hop_length=HOP_LENGTH, center=True)) ** 2
        mag = np.sqrt(power)
        mel = librosa.feature.melspectrogram(S=power, sr=SAMPLE_RATE, n_mels=N_MELS)
        mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=N_MFCC + 1)[1:] / 100.0
        centroid = librosa.feature.spectral_centroid(S=mag, sr=SAMPLE_RATE)[0] / 1000.0
        bandwidth = librosa.feature.spectral_bandwidth(S=mag, sr=SAMPLE_RATE)[0] / 1000.0
        rolloff = librosa.feature.spectral_rolloff(S=mag, sr=SAMPLE_RATE, roll_percent=0.85)[0] / 1000.0
        flatness = np.log10(librosa.feature.spectral_flatness(S=mag, amin=1e-10)[0] + 1e-6)
        zcr = librosa.feature.zero_crossing_rate(y, frame_length=FRAME_LENGTH, hop_length=HOP_LENGTH,
                                                 center=True)[0]

        f0 = librosa.yin(y, fmin=FMIN, fmax=FMAX, sr=SAMPLE_RATE, frame_length=FRAME_LENGTH,
                         hop_length=HOP_LENGTH, center=True)
        padded = np.pad(y, FRAME_LENGTH // 2)
        frames = librosa.util.frame(padded, frame_length=FRAME_LENGTH, hop_length=HOP_LENGTH, axis=0)
        t = min(len(f0), len(frames), len(rms), mfcc.shape[1], len(zcr))
        f0, frames, rms = f0[:t], frames[:t].astype(np.float64), rms[:t]
        voicing = _nccf_at(frames, np.round(SAMPLE_RATE / f0).astype(int))
        audible = 20 * np.log10(rms + 1e-10) > SILENCE_DBFS
        voiced = (voicing >= VOICING_THRESHOLD) & audible
        # A 3-frame median inside voiced runs removes YIN's single-frame octave slips.
        inside = voiced.copy()
        inside[[0, -1]] = False
        inside[1:-1] &= voiced[:-2] & voiced[2:]
        f0 = np.where(inside, np.median(np.stack([np.roll(f0, 1), f0, np.roll(f0, -1)]), axis=0), f0)
        f0_oct = np.where(voiced, np.log2(f0 / F0_REF), 0.0)
        f0_delta = np.zeros(t)
        both = voiced[1:] & voiced[:-1]
        f0_delta[1:][both] = np.diff(f0_oct)[both]
        log_rms = np.log10(rms + 1e-5)
        log_rms_delta = np.concatenate([[0.0], np.diff(log_rms)])

        feats = np.column_stack([
            f0_oct, f0_delta, voicing, voiced.astype(np.float64), log_rms, log_rms_delta,
            mfcc[:, :t].T, centroid[:t], bandwidth[:t], rolloff[:t], flatness[:t], zcr[:t],
        ]).astype(np.float32)
        stats["voiced_fraction"] = round(float(voiced.mean()), 3)
        return Extracted(feats, None, stats)


def warm_up(extractor: AudioExtractor | None = None) -> None:
    """Run every librosa path once so numba compiles (or loads its cache) now, not on the first clip."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.1 * np.sin(2 * np.pi * 150 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    (extractor or AudioExtractor()).extract(tone, SAMPLE_RATE)
