"""MMSA metrics against values worked out by hand on small arrays."""

import warnings

import numpy as np
import pytest
import torch

from selfmm.metrics import metrics_for, mosei_metrics, mosi_metrics, sims_bins, sims_metrics, SIMS_BINS_3, SIMS_BINS_5

#            0     1     2    3    4     5     6     7
MOSI_TRUE = [2.5, -0.5, 0.0, 0.0, 1.4, -2.4, 3.4, -1.2]
MOSI_PRED = [2.4, 0.3, 0.2, 0.1, 1.6, -3.8, 2.6, 0.0]


def test_mosi_metrics_by_hand():
    m = mosi_metrics(MOSI_PRED, MOSI_TRUE)
    keys = ["Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5", "Mult_acc_7", "MAE", "Corr"]
    assert list(m) == keys
    # Mult_acc_7, clip to [-3, 3] then round half to even:
    #   true [2.5 -0.5 0 0 1.4 -2.4 3(clipped) -1.2] -> [2 -0 0 0 1 -2 3 -1]   (2.5 -> 2, -0.5 -> -0 == 0)
    #   pred [2.4 0.3 0.2 0.1 1.6 -3(clipped) 2.6 0] -> [2 0 0 0 2 -3 3 0]
    #   equal at 0,1,2,3,6 -> 5/8                (half away from zero would miss 0 and 1)
    assert m["Mult_acc_7"] == 0.625
    # Mult_acc_5, clip to [-2, 2]: true -> [2 -0 0 0 1 -2 2 -1], pred -> [2 0 0 0 2 -2 2 0]; equal at 0,1,2,3,5,6 -> 6/8
    assert m["Mult_acc_5"] == 0.75
    # MAE, unclipped: |diff| = .1 .8 .2 .1 .2 1.4 .8 1.2, sum 4.8 -> 0.6
    assert m["MAE"] == 0.6
    # Has0 (true >= 0 vs pred >= 0): true [T F T T T F T F], pred [T T T T T F T T] -> wrong at 1, 7 -> 6/8
    assert m["Has0_acc_2"] == 0.75
    # weighted F1, weights = support in TRUE: class T (5): TP 5, FP 2, FN 0 -> P 5/7, R 1, F1 5/6
    #                                         class F (3): TP 1, FP 0, FN 2 -> P 1, R 1/3, F1 1/2
    #   (5 * 5/6 + 3 * 1/2) / 8 = 0.70833 -> 0.7083   (the swapped (pred, true) order would give 0.7917)
    assert m["Has0_F1_score"] == 0.7083
    # Non0: drop true == 0 (2, 3); samples 0,1,4,5,6,7: true > 0 [T F T F T F], pred > 0 [T T T F T F]
    #   (pred 0.0 at 7 is "not positive" here but "non-negative" for Has0) -> wrong at 1 only -> 5/6
    assert m["Non0_acc_2"] == 0.8333
    # class T (3): TP 3, FP 1 -> F1 6/7; class F (3): TP 2, FN 1 -> F1 4/5; (6/7 + 4/5) / 2 = 0.828571
    assert m["Non0_F1_score"] == 0.8286
    # Pearson: mean p 0.425, mean t 0.4; Sxy = 26.05 - 8*.425*.4 = 24.69, Sxx = 29.66 - 1.445 = 28.215,
    #   Syy = 27.22 - 1.28 = 25.94 -> 24.69 / sqrt(28.215 * 25.94) = 0.91263
    assert m["Corr"] == 0.9126


def test_mosi_accepts_tensors_of_any_shape():
    pred = torch.tensor(MOSI_PRED, requires_grad=True).reshape(-1, 1)
    assert mosi_metrics(pred, torch.tensor(MOSI_TRUE).reshape(-1, 1)) == mosi_metrics(MOSI_PRED, MOSI_TRUE)
    assert metrics_for("MOSEI") is mosei_metrics
    assert mosei_metrics(MOSI_PRED, MOSI_TRUE) == mosi_metrics(MOSI_PRED, MOSI_TRUE)


def test_pearson_simple():
    # deviations p [-1.5 -.5 .5 1.5], t [-1.5 .5 -.5 1.5]: Sxy = 2.25-.25-.25+2.25 = 4, Sxx = Syy = 5 -> 0.8
    assert mosi_metrics([1, 2, 3, 4], [1, 3, 2, 4])["Corr"] == 0.8


def test_degenerate_inputs_give_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = mosi_metrics([0.5, 0.5, 0.5], [0.0, 0.0, 0.0])  # constant pred and true, every label 0
        s = sims_metrics([0.3, 0.3], [0.2, -0.4])
    assert m["Corr"] == 0.0 and s["Corr"] == 0.0
    assert m["Non0_acc_2"] == 0.0 and m["Non0_F1_score"] == 0.0  # empty Non0 subset
    assert m["Has0_acc_2"] == 1.0 and m["Has0_F1_score"] == 1.0  # all non-negative, all predicted so
    assert mosi_metrics([1.0], [2.0])["Corr"] == 0.0  # one sample
    with pytest.raises(ValueError):
        mosi_metrics([], [])
    with pytest.raises(ValueError):
        sims_metrics([1.0, 2.0], [1.0])


#            0     1      2      3     4    5     6    7
SIMS_TRUE = [-1.0, -0.7, -0.1, 0.0, 0.1, 0.7, 1.0, 0.2]
SIMS_PRED = [-1.5, -0.69, -0.11, 0.05, 0.1, 0.71, 1.3, 0.0]


def test_sims_metrics_by_hand():
    m = sims_metrics(SIMS_PRED, SIMS_TRUE)
    # clip to [-1, 1] first: pred -> [-1 -.69 -.11 .05 .1 .71 1 0]
    # 2 bins (-1.01, 0], (0, 1.01]: true [0 0 0 0 1 1 1 1], pred [0 0 0 1 1 1 1 0] -> wrong at 3, 7 -> 6/8
    assert m["Mult_acc_2"] == 0.75
    # 3 bins, right edges -0.1, 0.1 included: true [0 0 0 1 1 2 2 2], pred [0 0 0 1 1 2 2 1] -> 7/8
    assert m["Mult_acc_3"] == 0.875
    # 5 bins (edges -.7 -.1 .1 .7): true [0 0 1 2 2 3 4 3], pred [0 1 1 2 2 4 4 2] -> wrong at 1, 5, 7 -> 5/8
    assert m["Mult_acc_5"] == 0.625
    # F1 on 2 bins: class 0 (4): TP 3, FP 1, FN 1 -> 0.75; class 1 (4): TP 3, FP 1, FN 1 -> 0.75
    assert m["F1_score"] == pytest.approx(0.75)
    # MAE after clipping: 0 + .01 + .01 + .05 + 0 + .01 + 0 + .2 = .28 -> .035 (unclipped it would be .135)
    assert m["MAE"] == pytest.approx(0.035, abs=1e-6)


def test_sims_clips_before_mae_and_corr():
    m = sims_metrics([2.0, -2.0, 0.5, -0.5], [1.0, -1.0, 0.5, -0.5])  # identical once clipped
    assert m["MAE"] == 0.0 and m["Corr"] == pytest.approx(1.0)
    assert m["Mult_acc_2"] == m["Mult_acc_3"] == m["Mult_acc_5"] == m["F1_score"] == 1.0


def test_sims_bin_edges_in_float32():
    # Edges belong to the bin on their left; float32(0.1) > 0.1 in float64, so comparing in float64 would
    # move edge values one bin up. MMSA compares float32 arrays, i.e. in float32.
    x = np.array([-1.0, -0.7, -0.69, -0.1, 0.0, 0.1, 0.11, 0.7, 0.71, 1.0], np.float32)
    assert sims_bins(x, SIMS_BINS_5).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert sims_bins(x, SIMS_BINS_3).tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]


def test_metrics_for():
    assert metrics_for("mosi") is mosi_metrics
    assert metrics_for("SIMS") is sims_metrics
    with pytest.raises(ValueError, match="unknown dataset"):
        metrics_for("iemocap")


def test_sims_values_are_rounded_to_4_decimals_like_mmsa():
    # 3 classes: pred [1 0 2], true [2 0 1] -> 1/3; MAE (0.1 + 0.2 + 0.3) / 3 = 0.2 in float32
    m = sims_metrics([0.1, -0.5, 0.35], [0.2, -0.3, 0.05])
    assert m["Mult_acc_3"] == 0.3333 and m["MAE"] == 0.2
    assert all(v == round(v, 4) for v in m.values())
