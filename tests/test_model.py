"""The network: padded LSTM == packed LSTM, batch size 1, absent modalities, and the reference's shapes."""
from dataclasses import replace

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from selfmm.config import ModelConfig, dataset_configs
from selfmm.model import SelfMM, SequenceEncoder

TINY_BERT = dict(model_type="bert", vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=64)


def tiny_model(audio_in: int = 5, vision_in: int = 20, dataset: str = "mosi") -> SelfMM:
    cfg, _ = dataset_configs(dataset, TINY_BERT, audio_in, vision_in)
    return SelfMM(cfg).eval()


def batch(b: int = 4, L: int = 12, ta: int = 30, tv: int = 25, a: int = 5, v: int = 20, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, L + 1, (b,), generator=g)
    mask = (torch.arange(L)[None] < lengths[:, None]).long()
    return dict(text_ids=torch.randint(1, 100, (b, L), generator=g) * mask, text_mask=mask,
                audio=torch.randn(b, ta, a, generator=g), audio_lengths=torch.randint(1, ta + 1, (b,), generator=g),
                vision=torch.randn(b, tv, v, generator=g), vision_lengths=torch.randint(1, tv + 1, (b,), generator=g))


def test_padded_lstm_equals_packed_final_hidden_state():
    torch.manual_seed(0)
    enc = SequenceEncoder(7, 16, 16, 0.0).eval()
    x = torch.randn(6, 40, 7)
    lengths = torch.tensor([40, 1, 17, 3, 39, 22])
    x = x * (torch.arange(40)[None, :, None] < lengths[:, None, None])  # zero padding, as in the data files
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    _, (h_n, _) = enc.rnn(packed)
    reference = enc.linear(h_n.squeeze(0))
    assert torch.allclose(enc(x, lengths), reference, atol=1e-6)


def test_outputs_and_feature_sizes_follow_the_config():
    model = tiny_model()
    out = model(**batch())
    c = model.config
    for head in "MTAV":
        assert out[head].shape == (4, 1)
    assert out["Feature_f"].shape == (4, c.post_fusion_dim)
    assert out["Feature_t"].shape == (4, c.post_text_dim)
    assert out["Feature_a"].shape == (4, c.post_audio_dim)
    assert out["Feature_v"].shape == (4, c.post_video_dim)


def test_batch_size_one_matches_the_same_sample_in_a_batch():
    model = tiny_model()
    b = batch(b=3)
    full = model(**b)
    one = model(**{k: v[1:2] for k, v in b.items()})
    for head in "MTAV":
        assert torch.allclose(full[head][1], one[head][0], atol=1e-5)


def test_absent_modality_is_a_zero_vector_and_never_nan():
    model = tiny_model()
    b = batch(b=3)
    b["audio_lengths"][0] = 0
    b["vision_lengths"][1] = 0
    b["text_mask"][2] = 0
    b["text_ids"][2] = 0
    b["audio"][0] = float("nan")  # whatever an absent row holds must not leak
    out = model(**b)
    assert all(torch.isfinite(out[h]).all() for h in out)
    zero_a = model.post_audio(torch.zeros(1, model.config.audio_out))[0]
    zero_v = model.post_video(torch.zeros(1, model.config.video_out))[0]
    zero_t = model.post_text(torch.zeros(1, model.config.text_dim))[0]
    assert torch.allclose(out["A"][0], zero_a[0])
    assert torch.allclose(out["V"][1], zero_v[0])
    assert torch.allclose(out["T"][2], zero_t[0])


def test_absent_audio_changes_the_fused_output_only_through_its_own_vector():
    model = tiny_model()
    b = batch(b=2)
    with_audio = model(**b)
    b["audio_lengths"] = torch.zeros(2, dtype=torch.long)
    without = model(**b)
    assert torch.allclose(with_audio["T"], without["T"]) and torch.allclose(with_audio["V"], without["V"])
    assert not torch.allclose(with_audio["M"], without["M"])


def test_all_modalities_absent_in_a_whole_batch_runs():
    model = tiny_model()
    b = batch(b=2, ta=1, tv=1)
    b["audio_lengths"][:] = 0
    b["vision_lengths"][:] = 0
    out = model(**b)
    assert out["M"].shape == (2, 1) and torch.isfinite(out["M"]).all()


@pytest.mark.parametrize("dataset,hidden", [("mosi", (16, 32)), ("sims", (16, 64))])
def test_dataset_configs_take_dims_from_data(dataset, hidden):
    cfg, train = dataset_configs(dataset, TINY_BERT, audio_in=33, vision_in=709)
    assert (cfg.audio_in, cfg.vision_in) == (33, 709)
    assert (cfg.a_lstm_hidden, cfg.v_lstm_hidden) == hidden
    assert train.H == (1.0 if dataset == "sims" else 3.0)


def test_model_config_round_trips():
    cfg = tiny_model().config
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_bert_base_sized_parameter_count():
    """The reference's sanity check: bert-base-uncased Self-MM has about 109.5 M parameters."""
    bert_base = dict(model_type="bert", vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                     num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)
    cfg, _ = dataset_configs("mosi", bert_base, 5, 20)
    n = sum(p.numel() for p in SelfMM(cfg).parameters())
    pooler = 768 * 768 + 768  # the reference keeps BERT's unused pooler; we drop it
    assert abs((n + pooler) / 1e6 - 109.5) < 0.5


def test_input_standardisation_is_identity_by_default_and_uses_valid_frames_only():
    model = tiny_model()
    b = batch(b=3)
    before = model(**b)["M"]
    frames = torch.randn(4, 10, 5) * 3 + 2
    lengths = torch.tensor([10, 5, 0, 1])
    frames[1, 5:] = 1000.0  # padding must not count
    model.set_input_stats("audio", frames, lengths)
    valid = torch.cat([frames[0], frames[1, :5], frames[3, :1]])
    assert torch.allclose(model.audio_mean, valid.mean(0)) and torch.allclose(model.audio_std, valid.std(0))
    assert not torch.allclose(model(**b)["M"], before)
    fresh = tiny_model()
    assert torch.equal(fresh.audio_mean, torch.zeros(5)) and torch.equal(fresh.audio_std, torch.ones(5))


def demo_model(seed: int = 0, fusion: str = "convex") -> SelfMM:
    """A tiny model with the demo options and large random weights, so that unbounded outputs would overshoot."""

    torch.manual_seed(seed)
    model = SelfMM(replace(tiny_model().config, bounded_heads=True, fusion=fusion)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(8.0)
    return model


@pytest.mark.parametrize("fusion", ["convex", "mlp"])
def test_bounded_heads_stay_on_the_scale(fusion):
    out = demo_model(fusion=fusion)(**batch(b=64, seed=3))
    for head in "MTAV":
        assert out[head].abs().max() <= 3.0
    assert out["M"].abs().max() > 1.0  # large weights: the bound, not small outputs, keeps them inside


def test_convex_fusion_lies_between_the_present_channels():
    b = batch(b=64, seed=4)
    g = torch.Generator().manual_seed(5)
    b["audio_lengths"] *= (torch.rand(64, generator=g) < 0.6).long()  # some rows without voice
    b["vision_lengths"] *= (torch.rand(64, generator=g) < 0.6).long()  # some without a face
    out = demo_model()(**b)
    channels = torch.cat([out["T"], out["A"], out["V"]], dim=1)
    present = torch.stack([b["text_mask"].sum(1) > 0, b["audio_lengths"] > 0, b["vision_lengths"] > 0], dim=1)
    low = torch.where(present, channels, torch.full_like(channels, 9)).min(1).values
    high = torch.where(present, channels, torch.full_like(channels, -9)).max(1).values
    m = out["M"].squeeze(1)
    assert torch.all(m >= low - 1e-5) and torch.all(m <= high + 1e-5)
    only_text = present[:, 0] & ~present[:, 1] & ~present[:, 2]
    assert only_text.any() and torch.allclose(m[only_text], out["T"].squeeze(1)[only_text], atol=1e-5)


def test_encoding_only_the_rows_with_text_changes_nothing():
    """Face- and voice-only rows skip the text encoder; the outputs equal a batch where every row is encoded."""
    model = tiny_model()
    b = batch(b=6, seed=6)
    b["text_mask"][[1, 4]] = 0
    b["text_ids"][[1, 4]] = 0
    mixed = model(**b)
    for i in range(6):  # one row at a time: all present or all absent, the encoder's full-batch path
        one = model(**{k: v[i:i + 1] for k, v in b.items()})
        for head in "MTAV":
            assert torch.allclose(mixed[head][i], one[head][0], atol=1e-5)


def test_mean_encoder_reads_the_mean_of_the_valid_frames_only():
    from selfmm.model import MeanEncoder

    torch.manual_seed(0)
    enc = MeanEncoder(7, 4, 0.0).eval()
    x = torch.randn(3, 10, 7)
    lengths = torch.tensor([10, 3, 0])
    out = enc(x, lengths)
    assert torch.allclose(out[0], enc.linear(x[0].mean(0)), atol=1e-6)
    assert torch.allclose(out[1], enc.linear(x[1, :3].mean(0)), atol=1e-6)  # padding frames do not count
    assert torch.allclose(out[2], enc.linear.bias, atol=1e-6)  # length 0: a zero mean, no NaN


def test_av_encoder_option_builds_mean_subnets_and_refuses_unknown_kinds():
    from selfmm.model import MeanEncoder

    model = SelfMM(replace(tiny_model().config, av_encoder="mean")).eval()
    assert isinstance(model.audio_model, MeanEncoder) and isinstance(model.video_model, MeanEncoder)
    out = model(**batch(seed=7))
    assert all(torch.isfinite(out[h]).all() for h in "MTAV")
    with pytest.raises(ValueError, match="av_encoder"):
        replace(tiny_model().config, av_encoder="gru")


def test_mean_encoder_exports_to_onnx_with_parity(tmp_path):
    """The mean subnet through ONNX Runtime equals PyTorch, with lengths the export never saw (1, full, 0)."""
    from export.onnx_export import export_onnx
    from selfmm import contract

    torch.manual_seed(0)
    model = SelfMM(replace(tiny_model().config, av_encoder="mean", bounded_heads=True, fusion="convex")).eval()
    export_onnx(model, tmp_path / "m.onnx")
    b = batch(b=3, seed=8)
    b["audio_lengths"] = torch.tensor([1, 30, 0])
    b["vision_lengths"] = torch.tensor([25, 0, 1])
    with torch.no_grad():
        ref = model(**b)
    session = contract.open_session(tmp_path / "m.onnx")
    got = dict(zip([o.name for o in session.get_outputs()],
                   session.run(None, contract.feeds(*(b[k].numpy() for k in (
                       "text_ids", "text_mask", "audio", "audio_lengths", "vision", "vision_lengths"))))))
    for head in "MTAV":
        assert abs(got[head].reshape(-1) - ref[head].numpy().reshape(-1)).max() < 1e-5
