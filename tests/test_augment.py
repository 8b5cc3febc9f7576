"""Recording-chain augmentation: each step does what it says, and a copy is fixed by its seed."""
import numpy as np
import pytest

from selfmm import augment

RATE = augment.SAMPLE_RATE


def tone(freq: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def power_at(wave: np.ndarray, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    return float(spectrum[int(round(freq * len(wave) / RATE))])


def test_speed_shortens_and_raises_the_pitch():
    out = augment.speed(tone(440.0), 1.1)
    assert abs(len(out) - RATE / 1.1) < 2
    assert abs(np.argmax(np.abs(np.fft.rfft(out))) * RATE / len(out) - 484.0) < 3


def test_the_telephone_band_cuts_low_and_high_frequencies():
    rng = np.random.default_rng(0)
    while True:  # the band step picks telephone or low-pass at random: find a seed that picks telephone
        state = rng.bit_generator.state
        if rng.random() < 0.5:
            break
    rng.bit_generator.state = state
    wave = tone(100.0) + tone(1000.0) + tone(7000.0)
    out = augment.band(wave, rng)
    assert power_at(out, 1000.0) > 0.5 * power_at(wave, 1000.0)
    assert power_at(out, 100.0) < 0.01 * power_at(wave, 100.0)
    assert power_at(out, 7000.0) < 0.01 * power_at(wave, 7000.0)


@pytest.mark.parametrize("seed", [1, 2])  # one draws white noise, the other brown
@pytest.mark.parametrize("snr", [5.0, 20.0])
def test_noise_is_added_at_the_asked_snr_over_the_whole_clip(snr, seed):
    wave = tone(300.0, 3.0)
    added = augment.noise(wave, snr, np.random.default_rng(seed)) - wave

    def measured(part: slice) -> float:
        return 10 * np.log10(np.mean(wave[part] ** 2) / np.mean(added[part] ** 2))

    assert abs(measured(slice(None)) - snr) < 0.1
    for part in (slice(0, RATE), slice(RATE, 2 * RATE), slice(2 * RATE, None)):  # stationary: no ramp at an end
        assert abs(measured(part) - snr) < 3.0


def test_mu_law_keeps_the_speech_band_and_drops_what_8_khz_cannot_carry():
    wave = tone(500.0) + tone(6000.0)
    out = augment.mu_law(wave)
    assert len(out) == len(wave)
    assert power_at(out, 500.0) > 0.8 * power_at(wave, 500.0)
    assert power_at(out, 6000.0) < 0.01 * power_at(wave, 6000.0)


@pytest.mark.parametrize("drr", [0.0, 10.0])
def test_a_room_keeps_the_direct_sound_above_its_tail_by_the_asked_ratio(drr):
    click = np.zeros(RATE, np.float32)
    click[100] = 0.5
    out = augment.room(click, 0.5, drr, np.random.default_rng(2)).astype(np.float64)
    direct, tail = out[100] ** 2, np.sum(out[101:] ** 2)
    assert abs(10 * np.log10(direct / tail) - drr) < 0.5
    assert np.sum(out[100 + RATE // 10:] ** 2) > 0.02 * tail  # the tail lasts: energy after 100 ms
    assert np.abs(out).max() == pytest.approx(0.5, rel=1e-3)


def test_a_chain_is_fixed_by_its_seed_and_differs_between_seeds():
    wave = tone(220.0, 2.0) + tone(1500.0, 2.0)
    a, b, c = (augment.recording_chain(wave, s) for s in (7, 7, 8))
    assert np.array_equal(a, b)
    assert a.dtype == np.float32 and np.isfinite(a).all() and np.abs(a).max() <= 1.0
    assert len(a) != len(c) or not np.allclose(a, c)
    assert augment.recording_chain(np.zeros(0, np.float32), 7).size == 0


def test_loud_copies_are_scaled_into_range_never_clipped():
    loud = tone(220.0, 1.0) / 0.3 * 0.98  # peak 0.98
    for seed in range(40):
        out = augment.recording_chain(loud, seed)
        assert np.abs(out).max() <= 0.99 + 1e-6
        top = np.abs(out) >= np.abs(out).max() - 1e-7
        assert not np.any(top[1:] & top[:-1])  # no flat tops: clipping holds the peak over consecutive samples
