"""Recording-chain augmentation of speech: what a different microphone, room, line or codec does to a voice.

Why: the voice head learns from two acted corpora, each recorded in one studio. The field's usual remedy for
corpus and channel shift is to train on copies of each clip passed through random recording chains, so that the
head cannot lean on one studio's sound. Each copy applies, in this order and each with its own probability:
speed (resampling, which also moves the pitch, as Kaldi's speed perturbation), a room (a synthetic exponentially
decaying impulse response at a random direct-to-reverberant ratio), a band limit (telephone band or a low-pass),
a codec (8 kHz mu-law), additive noise (white or brown, at a random SNR) and a gain within the clip's headroom
(nothing is clipped). Numpy and scipy only; a copy is fixed by its seed, and `describe` names the chain for caches.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import signal

SAMPLE_RATE = 16000
VERSION = 2  # bump when a step changes what it does: cached copies made by another version are not reused


@dataclass(frozen=True)
class ChainConfig:
    p_speed: float = 0.5
    speed: tuple[float, float] = (0.9, 1.1)
    p_room: float = 0.5
    rt60: tuple[float, float] = (0.15, 0.7)  # seconds for the tail to fall by 60 dB
    drr_db: tuple[float, float] = (0.0, 12.0)  # direct-to-reverberant energy ratio: a microphone 0.3-2 m away
    p_band: float = 0.4
    p_codec: float = 0.3
    p_noise: float = 0.6
    snr_db: tuple[float, float] = (5.0, 30.0)
    gain_db: tuple[float, float] = (-12.0, 6.0)


def speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """Played `factor` times faster: fewer samples, higher pitch."""
    up, down = int(round(1000 / factor)), 1000
    return signal.resample_poly(wave, up, down).astype(np.float32)


def room(wave: np.ndarray, rt60: float, drr_db: float, rng: np.random.Generator,
         rate: int = SAMPLE_RATE) -> np.ndarray:
    """Convolved with a direct path and a noise tail that falls 60 dB in `rt60` s, the tail's energy `drr_db`
    below the direct path's; the clip's peak is kept."""
    n = max(2, int(rate * rt60))
    t = np.arange(1, n) / rate
    tail = rng.standard_normal(n - 1) * np.exp(-6.9 * t / rt60)
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail ** 2))
    ir = np.concatenate([[1.0], tail])
    wet = signal.fftconvolve(wave, ir)[: len(wave)]
    return (wet * (np.abs(wave).max() / (np.abs(wet).max() + 1e-9))).astype(np.float32)


def band(wave: np.ndarray, rng: np.random.Generator, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Telephone band (300-3400 Hz) or a low-pass between 3 and 6 kHz."""
    if rng.random() < 0.5:
        sos = signal.butter(6, [300, 3400], btype="bandpass", fs=rate, output="sos")
    else:
        sos = signal.butter(6, rng.uniform(3000, 6000), btype="lowpass", fs=rate, output="sos")
    return signal.sosfilt(sos, wave).astype(np.float32)


def mu_law(wave: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """G.711-like: down to 8 kHz, 8-bit mu-law, and back."""
    low = signal.resample_poly(wave, 1, rate // 8000)
    peak = np.abs(low).max() + 1e-9
    x = np.clip(low / peak, -1, 1)
    mu = 255.0
    coded = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127) / 127
    decoded = np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu * peak
    return signal.resample_poly(decoded, rate // 8000, 1)[: len(wave)].astype(np.float32)


def noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White or brown (leakily integrated white: rumble, fans, handling) noise at `snr_db` below the clip's
    power, stationary over the clip."""
    n = rng.standard_normal(len(wave))
    if rng.random() < 0.5:
        n = signal.lfilter([1.0], [1.0, -0.995], n)  # 1/f^2 above ~13 Hz, bounded below it
        n -= n.mean()
    power = np.mean(wave.astype(np.float64) ** 2) + 1e-12
    n *= np.sqrt(power / (np.mean(n ** 2) + 1e-12) / 10 ** (snr_db / 10))
    return (wave + n).astype(np.float32)


def describe(config: ChainConfig = ChainConfig()) -> dict:
    """What makes a copy: this module's version and the chain's settings (seeds come from the clip and copy)."""
    return {"augment": VERSION, **asdict(config)}


def recording_chain(wave: np.ndarray, seed: int, config: ChainConfig = ChainConfig()) -> np.ndarray:
    """One random recording chain applied to 16 kHz mono `wave`; the same seed gives the same copy."""
    rng = np.random.default_rng(seed)
    x = np.asarray(wave, dtype=np.float32)
    if x.size == 0:
        return x
    c = config
    if rng.random() < c.p_speed:
        x = speed(x, rng.uniform(*c.speed))
    if rng.random() < c.p_room:
        x = room(x, rng.uniform(*c.rt60), rng.uniform(*c.drr_db), rng)
    if rng.random() < c.p_band:
        x = band(x, rng)
    if rng.random() < c.p_codec:
        x = mu_law(x)
    if rng.random() < c.p_noise:
        x = noise(x, rng.uniform(*c.snr_db), rng)
    gain = 10 ** (rng.uniform(*c.gain_db) / 20)
    peak = float(np.abs(x).max())
    if peak * gain > 0.99:  # a louder microphone, not a clipping one
        gain = 0.99 / max(peak, 1e-9)
    return (x * gain).astype(np.float32)
