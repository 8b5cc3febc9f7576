"""Audio frames from Whisper tiny.en's encoder (selfmm.features.whisper_audio), on espeak-ng speech."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from harness import media
from harness.app_model import REPO

pytestmark = pytest.mark.skipif(not media.have_espeak(), reason="espeak-ng is not installed")

RATE = 16000


@pytest.fixture(scope="module")
def extractor():
    from selfmm.features.whisper_audio import WhisperAudioExtractor

    return WhisperAudioExtractor()


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    import librosa

    wave, rate = media.speech_samples(seconds=4.0)
    return librosa.resample(wave, orig_sr=rate, target_sr=RATE)


def test_spec_says_what_the_frames_are(extractor):
    spec = extractor.spec
    assert (spec.name, spec.modality, spec.dim, spec.fps, spec.rate) == ("whisper-encoder", "audio", 384, 10, RATE)
    assert spec.params["model"].startswith("tiny.en") and spec.params["compute_type"] == "float32"


def test_frames_of_speech(extractor, speech):
    got = extractor.extract(speech, RATE)
    assert got.present and got.frames.dtype == np.float32
    assert got.frames.shape == (40, 384)  # 4 s -> 200 states -> 40 frames
    assert np.isfinite(got.frames).all()
    assert got.frames.std(axis=0).mean() > 0.05  # the frames follow the speech; they are not one vector
    # the extractor's own resampling gives the same frames as 16 kHz input (within resampler differences)
    wave, rate = media.speech_samples(seconds=4.0)
    again = extractor.extract(wave, rate).frames
    assert np.corrcoef(again.ravel(), got.frames.ravel())[0, 1] > 0.99


def test_missing_by_the_same_rules_as_the_librosa_columns(extractor):
    from selfmm.features.audio import AudioExtractor

    columns = AudioExtractor()
    noise_floor = (np.random.default_rng(0).standard_normal(32000) * 1e-4).astype(np.float32)
    for wave in (None, np.zeros(32000, np.float32), noise_floor, np.ones(1000, np.float32) * 0.1):
        a, b = extractor.extract(wave), columns.extract(wave)
        assert a.frames is None and a.missing and a.missing == b.missing


def test_long_clip_is_read_in_independent_30_second_windows(extractor):
    import librosa

    wave, rate = media.speech_samples(seconds=5.0)
    five = librosa.resample(wave, orig_sr=rate, target_sr=RATE)
    long = np.tile(five, 7)  # 35 s: one full window, then 5 s that are `five` again
    frames = extractor.extract(long, RATE).frames
    assert frames.shape == ((1500 + 250) // 5, 384)
    np.testing.assert_allclose(frames[:300], extractor.extract(long[:30 * RATE], RATE).frames, atol=1e-4)
    np.testing.assert_allclose(frames[300:], extractor.extract(five, RATE).frames, atol=1e-4)


def test_pipeline_shares_the_transcribers_whisper_and_runs_both_at_once():
    from selfmm.features import FeaturePipeline

    with FeaturePipeline(audio="whisper-encoder", vision=False) as p:
        assert p.audio.model is p.transcriber.model  # one tiny.en in memory, not two
        assert p.specs["audio"].name == "whisper-encoder"
        c = p.extract(str(media.speech_wav(seconds=4.0)))
    assert c.audio.shape == (40, 384) and c.transcript_source == "whisper" and c.transcript


def test_unknown_audio_features_are_named():
    from selfmm.features.pipeline import audio_extractor

    with pytest.raises(ValueError, match="selfmm-audio, whisper-encoder"):
        audio_extractor("mfcc")


@pytest.mark.parametrize("named,expected", [("whisper-encoder", "whisper-encoder"), ("selfmm-audio", "selfmm-audio"),
                                            ("next-year's-features", "selfmm-audio"), (None, "selfmm-audio")])
def test_the_app_extracts_the_audio_features_the_card_names(tmp_path, named, expected):
    """An unknown name gets the default extractor; the artifact loader then refuses the model, naming what differs."""
    from selfmm.features.pipeline import FeaturePipeline

    card = {"feature_specs": {"audio": {"name": named}}} if named else {"feature_specs": []}
    with FeaturePipeline.for_card(card, tmp_path) as features:
        assert features.specs["audio"].name == expected


@pytest.mark.slow
def test_frames_agree_across_cpu_code_paths(tmp_path):
    """With int8, MKL's VNNI and AVX2 kernels gave states up to ~3 apart, so the voice head read differently from
    machine to machine; the float32 states must agree whichever kernels run (MKL_CBWR picks them)."""
    script = ("import sys, librosa, numpy as np\n"
              "from harness import media\n"
              "from selfmm.features.whisper_audio import WhisperAudioExtractor\n"
              "wave, rate = media.speech_samples(seconds=4.0)\n"
              f"y = librosa.resample(wave, orig_sr=rate, target_sr={RATE})\n"
              f"np.save(sys.argv[1], WhisperAudioExtractor().extract(y, {RATE}).frames)\n")
    frames = []
    for name, cbwr in (("auto", None), ("avx2", "AVX2")):
        env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"} | ({"MKL_CBWR": cbwr} if cbwr else {})
        out = tmp_path / f"{name}.npy"
        run = subprocess.run([sys.executable, "-c", script, str(out)], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        frames.append(np.load(out))
    assert frames[0].shape == frames[1].shape
    assert np.abs(frames[0] - frames[1]).max() < 1e-2


def test_the_transcription_decodes_from_the_voice_features_encoder_pass(speech, monkeypatch):
    """One encoder pass per clip: the voice features keep their encoder output of the first window, and the
    transcription of the same samples decodes from it without encoding again; it reads the same words as a
    transcription that encodes the clip itself."""
    from faster_whisper import WhisperModel

    from selfmm.features.asr import Transcriber
    from selfmm.features.whisper_audio import WhisperAudioExtractor

    transcriber = Transcriber()
    voice = WhisperAudioExtractor(transcriber.model)
    alone = transcriber.transcribe(speech)  # nothing kept: it encodes the clip itself
    encodes = []
    original = WhisperModel.encode
    monkeypatch.setattr(WhisperModel, "encode", lambda self, f: encodes.append(f.shape) or original(self, f))
    assert voice.extract(speech, RATE).present and len(transcriber.model._kept) == 0  # none asked for
    assert voice.extract(speech, RATE, hand_over=True).present and len(transcriber.model._kept) == 1
    shared = transcriber.transcribe(speech)
    assert encodes == [] and len(transcriber.model._kept) == 0
    assert "wonderful" in shared.text.lower() and shared.text == alone.text


def test_a_clip_encodes_once_and_a_voice_reading_alone_keeps_nothing(speech, monkeypatch):
    """The pipeline asks for the hand-over only where a transcription of the same samples follows: a clip costs
    one encoder pass, and a reading of the voice alone (live updates, the corpus builder) holds no output."""
    from faster_whisper import WhisperModel

    from selfmm.features.pipeline import FeaturePipeline

    encodes = []
    original = WhisperModel.encode
    monkeypatch.setattr(WhisperModel, "encode", lambda self, f: encodes.append(f.shape) or original(self, f))
    with FeaturePipeline(audio="whisper-encoder", vision=False) as pipe:
        model = pipe.transcriber.model
        clip = pipe.extract((RATE, speech))
        assert clip.audio is not None and "wonderful" in clip.transcript.lower()
        assert encodes == [] and len(model._kept) == 0  # the transcription decoded from the voice's pass
        assert pipe.audio.extract(speech, RATE).present and len(model._kept) == 0
        given = pipe.extract((RATE, speech), transcript="given words")  # no transcription follows
        assert given.audio is not None and len(model._kept) == 0
