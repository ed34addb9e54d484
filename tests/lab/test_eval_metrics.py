"""LongBench metrics and paired statistics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from semtoken_lab.eval import metrics as M
from semtoken_lab.eval.stats import (
    Estimate,
    bootstrap_retained,
    mean_se,
    paired_delta,
    retained_fraction,
)


def test_normalize_answer_longbench_rules() -> None:
    # lower, punctuation out, articles a/an/the out, whitespace collapsed
    assert M.normalize_answer("  The Cat, an apple   and A dog! ") == "cat apple and dog"
    assert M.normalize_answer("Theatre") == "theatre"  # 'the' only as a whole word


def test_qa_f1_hand_computed() -> None:
    # pred tokens [cat, sat, on, mat], gold [cat, on, mat, today] -> 3 common
    # P = 3/4, R = 3/4, F1 = 0.75
    assert M.qa_f1_score("The cat sat on the mat.", "cat on a mat today") == pytest.approx(0.75)
    assert M.qa_f1_score("nothing", "else") == 0.0
    # repeated tokens count once per occurrence: pred [a1, a1] vs gold [a1] -> P=1/2 R=1
    assert M.qa_f1_score("yes yes", "yes") == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_score_takes_max_over_answers() -> None:
    assert M.score("qa_f1", "Paris", ["London", "paris"]) == 1.0


def test_rouge_l_hand_computed() -> None:
    # pred "a b c d", gold "a c d e" -> LCS "a c d" = 3; P = 3/4, R = 3/4
    assert M.lcs_length(list("abcd"), list("acde")) == 3
    assert M.rouge_l_score("a b c d", "a c d e") == pytest.approx(0.75)
    # P = 2/2, R = 2/4 -> F = 2/3
    assert M.rouge_l_score("police kill", "police killed the gunman".replace("killed", "kill")) == (
        pytest.approx(2 / 3)
    )
    assert M.rouge_l_score("", "x") == 0.0


def test_classification_retrieval_count_code() -> None:
    classes = ["Location", "Entity", "Abbreviation"]
    assert M.classification_score("It is a Location.", "Location", all_classes=classes) == 1.0
    assert M.classification_score("Location or Entity", "Location", all_classes=classes) == 0.5
    assert M.classification_score("Entity", "Location", all_classes=classes) == 0.0
    assert M.retrieval_score("Paragraph 3", "Paragraph 3") == 1.0
    assert M.retrieval_score("3 or 5", "Paragraph 3") == 0.5
    assert M.count_score("There are 7 or 8 unique paragraphs", "7") == 0.5
    assert M.count_score("none", "7") == 0.0
    # first code line skipping comments; identical -> 1
    assert M.code_sim_score("# comment\nreturn x + 1\n", "return x + 1") == 1.0
    # "abcd" vs "abce": 3 matches, 2*3/8
    assert M.code_sim_score("abcd", "abce") == pytest.approx(0.75)


def test_exact_match_and_multiple_choice() -> None:
    assert M.exact_match_score("The Eiffel Tower.", "eiffel tower") == 1.0
    opts = ["red apple", "green pear", "blue fish", "yellow sun"]
    assert M.mc_accuracy_score("B", "green pear", options=opts) == 1.0
    assert M.mc_accuracy_score("(C) blue fish", "green pear", options=opts) == 0.0
    assert M.mc_accuracy_score("I think the green pear", "green pear", options=opts) == 1.0


def test_zh_variants_use_characters() -> None:
    assert M.qa_f1_zh_score("北京，中国", "北京") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert M.rouge_zh_score("北京", "北京") == 1.0


def test_first_line_datasets() -> None:
    assert M.score("qa_f1", "Paris\nand more text", ["Paris"], dataset="triviaqa") == 1.0


def test_answer_in_text_word_boundaries() -> None:
    assert M.answer_in_text(["the sixth"], "He came, sixth, to the party.")
    assert not M.answer_in_text(["6"], "In 1966 it happened.")
    assert not M.answer_in_text([""], "anything")


def test_mean_se_and_paired_delta() -> None:
    e = mean_se([1.0, 2.0, 3.0, 4.0])
    # std(ddof=1) of 1..4 = sqrt(5/3); SE = sqrt(5/3)/2
    assert e.value == pytest.approx(2.5)
    assert e.se == pytest.approx(math.sqrt(5 / 3) / 2)
    d = paired_delta([2.0, 3.0, 5.0], [1.0, 1.0, 2.0])  # diffs 1,2,3 -> mean 2, SE 1/sqrt(3)
    assert d.value == pytest.approx(2.0)
    assert d.se == pytest.approx(1 / math.sqrt(3))
    assert not d.is_tie()  # 2 >= 2 * 0.577
    assert Estimate(0.5, 0.3, 10).is_tie()
    assert Estimate(0.0, 0.0, 10).is_tie()


def test_retained_fraction_hand_computed() -> None:
    closed = [0.0, 0.0, 0.0, 0.0]
    full = [2.0, 2.0, 2.0, 2.0]
    method = [1.0, 1.0, 1.0, 1.0]
    r = retained_fraction(method, closed, full)
    assert r.value == pytest.approx(0.5)
    assert r.se == pytest.approx(0.0)  # no variance at all
    # X = m - c = [1, 3], Y = f - c = [2, 2]: R = 2/2 = 1; Var X = 2, Var Y = 0
    # Var(R) = (2 - 0 + 0) / (2 * 4) = 0.25 -> SE 0.5
    r2 = retained_fraction([1.0, 3.0], [0.0, 0.0], [2.0, 2.0])
    assert r2.value == pytest.approx(1.0)
    assert r2.se == pytest.approx(0.5)


def test_bootstrap_is_seeded_and_close_to_delta_method() -> None:
    rng = np.random.default_rng(1)
    c = rng.normal(-6, 0.5, 200)
    f = c + rng.normal(4, 1.0, 200)
    m = c + 0.8 * (f - c) + rng.normal(0, 0.5, 200)
    a = bootstrap_retained(m, c, f, seed=3)
    b = bootstrap_retained(m, c, f, seed=3)
    assert a == b
    assert a.se == pytest.approx(retained_fraction(m, c, f).se, rel=0.25)
