"""ULGM step by step against small examples computed by hand (numbers derived in the comments)."""
import math

import torch

from selfmm.ulgm import ULGM

DIMS = {"fusion": 2, "text": 2, "audio": 2, "vision": 2}


def make(labels, exclude_zero=False, H=3.0, present=None, given=None) -> ULGM:
    return ULGM(torch.tensor(labels, dtype=torch.float32), DIMS, H, exclude_zero, present, given)


def test_labels_start_as_the_multimodal_label():
    u = make([2.0, -1.0, 0.0])
    for m in ("fusion", "text", "audio", "vision"):
        assert torch.equal(u.labels[m], torch.tensor([2.0, -1.0, 0.0]))


def test_centres_split_by_label_with_and_without_exclude_zero():
    F = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
    for exclude_zero, pos in ((False, [4 / 3, 1 / 3]), (True, [1.5, 0.0])):
        # y = [2, -1, 0, 1]: the zero label joins the positive centre unless excluded
        u = make([2.0, -1.0, 0.0, 1.0], exclude_zero=exclude_zero)
        u.features = {m: F.clone() for m in u.features}
        u.update_centres()
        assert torch.allclose(u.centres["fusion"][0], torch.tensor(pos))
        assert torch.allclose(u.centres["fusion"][1], torch.tensor([0.0, 1.0]))


def test_relative_distance_by_hand():
    u = make([2.0, -1.0])
    u.centres["fusion"] = (torch.tensor([4 / 3, 1 / 3]), torch.tensor([0.0, 1.0]))
    # F = [1, 0]: d_p = sqrt(2)/3, d_n = sqrt(2) -> (d_n - d_p) / d_p = 2
    assert math.isclose(float(u.relative_distance("fusion", torch.tensor([[1.0, 0.0]]))[0]), 2.0, rel_tol=1e-6)


def _label_setup(epoch_features_t):
    u = make([2.0, -1.0])
    u.centres["fusion"] = (torch.tensor([4 / 3, 1 / 3]), torch.tensor([0.0, 1.0]))  # delta_f = 2 for F_f = [1, 0]
    for m in ("text", "audio", "vision"):
        u.centres[m] = (torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    feats = {"fusion": torch.tensor([[1.0, 0.0]]), "text": epoch_features_t,
             "audio": torch.tensor([[1.0, 0.0]]), "vision": torch.tensor([[0.0, 0.0]])}
    return u, feats


def test_new_label_formula_and_momentum_by_hand():
    # text: F_t = [0, 0] is equidistant from both centres -> delta_s = 0, alpha = 0,
    # new = 0.5*0*2 + 0.5*(2 + 0 - 2) = 0; epoch 2: 1/3 * 2 + 2/3 * 0 = 2/3; epoch 3: 1/2 * 2/3 + 1/2 * 0 = 1/3
    u, feats = _label_setup(torch.tensor([[0.0, 0.0]]))
    idx = torch.tensor([0])
    u.update_labels(feats, idx, epoch=2)
    assert math.isclose(float(u.labels["text"][0]), 2 / 3, rel_tol=1e-5)
    u.update_labels(feats, idx, epoch=3)
    assert math.isclose(float(u.labels["text"][0]), 1 / 3, rel_tol=1e-5)
    assert float(u.labels["fusion"][0]) == 2.0  # y_m never changes
    assert float(u.labels["text"][1]) == -1.0  # samples outside the batch are untouched


def test_new_label_is_clamped_to_H():
    # audio: F_a on the positive centre -> d_p = 0, delta_s = 1/1e-8, new -> +inf, clamped to 3;
    # epoch 2: 1/3 * 2 + 2/3 * 3 = 8/3
    u, feats = _label_setup(torch.tensor([[0.0, 0.0]]))
    u.update_labels(feats, torch.tensor([0]), epoch=2)
    assert math.isclose(float(u.labels["audio"][0]), 8 / 3, rel_tol=1e-5)


def test_labels_stay_within_H_under_random_features():
    torch.manual_seed(0)
    u = make((torch.rand(64) * 6 - 3).tolist(), H=3.0)
    for epoch in range(1, 6):
        for start in range(0, 64, 8):
            idx = torch.arange(start, start + 8)
            u.step({m: torch.randn(8, 2) * 5 for m in DIMS}, idx, epoch)
    for m in ("text", "audio", "vision"):
        assert u.labels[m].abs().max() <= 3.0 + 1e-6


def test_epoch_one_unimodal_weights_are_zero():
    u = make([2.0, -1.0, 0.5])
    idx = torch.arange(3)
    out = {h: torch.randn(3, 1) for h in "MTAV"}
    for m, w in u.weights(idx).items():
        assert torch.equal(w, torch.zeros(3)), m
    loss, parts = u.loss(out, idx)
    assert parts["T"] == parts["A"] == parts["V"] == 0.0
    assert math.isclose(float(loss), float((out["M"].view(-1) - torch.tensor([2.0, -1.0, 0.5])).abs().mean()), rel_tol=1e-6)


def test_loss_weights_are_tanh_of_label_gap():
    u = make([2.0, -1.0])
    u.labels["text"] = torch.tensor([1.0, -1.0])
    w = u.weights(torch.tensor([0, 1]))["text"]
    assert torch.allclose(w, torch.tensor([math.tanh(1.0), 0.0]))


def test_empty_class_keeps_previous_centre_instead_of_nan():
    u = make([1.0, 2.0, 3.0])  # no negative sample at all
    u.features = {m: torch.ones(3, 2) for m in u.features}
    u.update_centres()
    assert all(torch.isfinite(c).all() for pair in u.centres.values() for c in pair)
    assert u.empty_classes == 4  # the negative centre of each head


def test_non_finite_features_are_not_stored_and_labels_stay_finite():
    u = make([2.0, -1.0, 1.0, -2.0])
    idx = torch.arange(4)
    good = {m: torch.randn(4, 2) for m in DIMS}
    u.step(good, idx, epoch=1)
    bad = {m: f.clone() for m, f in good.items()}
    bad["text"][0] = float("nan")
    bad["fusion"][1] = float("inf")
    u.step(bad, idx, epoch=2)
    assert torch.equal(u.features["text"][0], good["text"][0])
    assert all(torch.isfinite(u.labels[m]).all() for m in u.labels)
    assert all(torch.isfinite(c).all() for pair in u.centres.values() for c in pair)


def test_absent_modality_is_masked_everywhere():
    present = {"audio": torch.tensor([True, False, True, True])}
    u = make([2.0, 2.5, -1.0, -2.0], present=present)
    F = torch.tensor([[1.0, 0.0], [9.0, 9.0], [0.0, 1.0], [0.0, 2.0]])
    u.features = {m: F.clone() for m in u.features}
    u.update_centres()
    assert torch.allclose(u.centres["audio"][0], torch.tensor([1.0, 0.0]))  # sample 1 left out
    assert torch.allclose(u.centres["text"][0], torch.tensor([5.0, 4.5]))  # but counted for text
    u.labels["audio"][1] = 0.0
    assert float(u.weights(torch.tensor([1]))["audio"][0]) == 0.0
    u.update_labels({m: F[1:2] for m in DIMS}, torch.tensor([1]), epoch=2)
    assert float(u.labels["audio"][1]) == 0.0  # not updated


def _reference_epoch(labels, feats_map, centres, batches, features_by_batch, epoch, H=3.0):
    """The reference's per-batch ULGM, transcribed plainly from docs/method.md (no masks, no guards)."""
    for idx, feats in zip(batches, features_by_batch):
        if epoch > 1:
            def delta(m, f):
                d_p = torch.norm(f - centres[m][0], dim=-1)
                d_n = torch.norm(f - centres[m][1], dim=-1)
                return (d_n - d_p) / (d_p + 1e-8)
            y_m = labels["fusion"][idx]
            d_f = delta("fusion", feats["fusion"])
            for m in ("text", "audio", "vision"):
                d_s = delta(m, feats[m])
                new = torch.clamp(0.5 * d_s / (d_f + 1e-8) * y_m + 0.5 * (y_m + d_s - d_f), -H, H)
                labels[m][idx] = (epoch - 1) / (epoch + 1) * labels[m][idx] + 2 / (epoch + 1) * new
        for m in feats:
            feats_map[m][idx] = feats[m]
        for m in feats:
            centres[m] = (feats_map[m][labels[m] >= 0].mean(0), feats_map[m][labels[m] < 0].mean(0))


def test_complete_data_reduces_to_the_reference_formulas():
    """With every modality present and finite, our ULGM (masks and guards included) gives exactly the
    labels of a plain transcription of the reference code."""
    torch.manual_seed(1)
    y = torch.rand(32) * 6 - 3
    ours = make(y.tolist(), present={m: torch.ones(32, dtype=torch.bool) for m in ("text", "audio", "vision")})
    labels = {m: y.clone() for m in DIMS}
    feats_map = {m: torch.zeros(32, 2) for m in DIMS}
    centres = {m: (torch.zeros(2), torch.zeros(2)) for m in DIMS}
    for epoch in (1, 2, 3):
        batches = list(torch.randperm(32).split(8))
        feats = [{m: torch.randn(8, 2) for m in DIMS} for _ in batches]
        for idx, f in zip(batches, feats):
            ours.step(f, idx, epoch)
        _reference_epoch(labels, feats_map, centres, batches, feats, epoch)
    assert ours.empty_classes == 0
    for m in DIMS:
        assert torch.allclose(ours.labels[m], labels[m], atol=1e-6), m
    assert not torch.allclose(ours.labels["text"], y)  # the labels did move


def test_given_unimodal_labels_are_used_with_weight_one_and_never_regenerated():
    nan = float("nan")
    given = {"text": torch.tensor([2.0, nan, 0.0]), "audio": torch.tensor([nan, nan, -1.5])}
    u = make([2.0, -1.0, -2.0], given=given)
    assert torch.equal(u.labels["text"], torch.tensor([2.0, -1.0, 0.0]))
    w = u.weights(torch.arange(3))
    assert torch.equal(w["text"], torch.tensor([1.0, 0.0, 1.0]))  # given rows: 1 even where y_s == y_m
    assert torch.equal(w["audio"], torch.tensor([0.0, 0.0, 1.0]))
    torch.manual_seed(0)
    for epoch in (1, 2, 3):
        u.step({m: torch.randn(3, 2) for m in DIMS}, torch.arange(3), epoch)
    assert float(u.labels["text"][2]) == 0.0 and float(u.labels["audio"][2]) == -1.5
    assert float(u.labels["text"][1]) != -1.0  # not given: generated as usual
