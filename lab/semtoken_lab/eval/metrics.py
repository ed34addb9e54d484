"""Task metrics, re-implemented from LongBench's ``metrics.py`` with its normalisation rules.

Why re-implemented: LongBench's scorer depends on ``rouge``, ``jieba`` and ``fuzzywuzzy`` and is
not packaged; the rules are short, so they live here, tested against hand-computed values.

Normalisation (``normalize_answer``, as SQuAD/LongBench): lower-case, drop ASCII punctuation,
drop the articles *a/an/the*, collapse whitespace.  Chinese variants use characters as tokens
(LongBench uses jieba words; characters avoid the dependency and are documented as such).

Every metric has the signature ``(prediction, ground_truth, **kwargs) -> float`` in [0, 1];
:func:`score` takes the max over gold answers as LongBench does.
"""

from __future__ import annotations

import difflib
import functools
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

_PUNCT = set(string.punctuation)
_ZH_PUNCT = set(
    "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』"
    "【】〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."
)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """LongBench/SQuAD normalisation: lower, remove punctuation, articles, extra whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def normalize_zh_answer(s: str) -> str:
    """LongBench's Chinese normalisation: lower, drop all whitespace and (CJK) punctuation."""
    s = "".join(s.lower().split())
    return "".join(ch for ch in s if ch not in _PUNCT and ch not in _ZH_PUNCT)


def _token_f1(pred: Sequence[str], gold: Sequence[str]) -> float:
    common = Counter(pred) & Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred)
    recall = same / len(gold)
    return 2 * precision * recall / (precision + recall)


def qa_f1_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """Token F1 of the normalised strings (LongBench ``qa_f1_score``)."""
    return _token_f1(normalize_answer(prediction).split(), normalize_answer(ground_truth).split())


def qa_f1_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """Character F1 of the normalised Chinese strings."""
    return _token_f1(list(normalize_zh_answer(prediction)), list(normalize_zh_answer(ground_truth)))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (O(len(a)·len(b)) time, O(len(b)) memory)."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def _rouge_l(pred: Sequence[str], gold: Sequence[str]) -> float:
    lcs = lcs_length(pred, gold)
    if lcs == 0:
        return 0.0
    p, r = lcs / len(pred), lcs / len(gold)
    return 2 * p * r / (p + r)


def rouge_l_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """ROUGE-L F1 over lower-cased whitespace tokens with punctuation removed.

    Why this tokenisation: the ``rouge`` package LongBench calls splits on whitespace after
    removing non-alphanumerics; the same rule is used here (no stemming, as there).
    """

    def toks(s: str) -> list[str]:
        return re.sub(r"[^a-z0-9]+", " ", s.lower()).split()

    return _rouge_l(toks(prediction), toks(ground_truth))


def rouge_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """ROUGE-L F1 over characters of the normalised Chinese strings."""
    return _rouge_l(list(normalize_zh_answer(prediction)), list(normalize_zh_answer(ground_truth)))


def classification_score(prediction: str, ground_truth: str, **kwargs: Any) -> float:
    """LongBench ``classification_score``: 1/k if the gold class is among the k classes named.

    Classes that are a strict substring of the gold class are not counted (LongBench's rule).
    """
    all_classes: Sequence[str] = kwargs.get("all_classes") or ()
    matched = [c for c in all_classes if c in prediction]
    matched = [c for c in matched if not (c in ground_truth and c != ground_truth)]
    return 1.0 / len(matched) if ground_truth in matched else 0.0


def retrieval_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """LongBench ``retrieval_score``: share of the numbers in the prediction that are the gold
    paragraph id (``Paragraph N`` / Chinese ``段落N``)."""
    found = re.findall(r"Paragraph (\d+)", ground_truth) or re.findall(r"段落(\d+)", ground_truth)
    if not found:
        return 0.0
    numbers = re.findall(r"\d+", prediction)
    return sum(n == found[0] for n in numbers) / len(numbers) if numbers else 0.0


def count_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """LongBench ``count_score``: share of the numbers in the prediction equal to the gold."""
    numbers = re.findall(r"\d+", prediction)
    return sum(n == str(ground_truth) for n in numbers) / len(numbers) if numbers else 0.0


def code_sim_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """LongBench ``code_sim_score``: edit similarity of the first code line of the prediction.

    The first line without a backtick, ``#`` or ``//`` is compared; ``difflib`` ratio stands in
    for ``fuzz.ratio`` (both 2·matches/total length).
    """
    line = ""
    for cand in prediction.lstrip("\n").split("\n"):
        if "`" not in cand and "#" not in cand and "//" not in cand:
            line = cand
            break
    return difflib.SequenceMatcher(None, line, ground_truth, autojunk=False).ratio()


def exact_match_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """1 if the normalised strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


@functools.lru_cache(maxsize=32)
def _letter_pattern(n_options: int) -> re.Pattern[str]:
    """A leading option letter among the first ``max(4, n_options)`` letters.

    Why not always ``A-D``: the reader's prompt letters every option (``E.`` for a fifth), so a
    bare ``E`` answer must pick the fifth option, not fall back to text overlap (which picked
    the first).  At least ``A-D``, as before, so four-option scoring is unchanged.
    """
    letters = string.ascii_uppercase[: min(max(4, n_options), 26)]
    cls = f"[{letters}{letters.lower()}]"
    return re.compile(rf"^\s*\(?({cls})[\).:\s]|^\s*({cls})\s*$")


def mc_accuracy_score(prediction: str, ground_truth: str, **kwargs: Any) -> float:
    """Multiple choice: 1 if the prediction picks the gold option.

    The pick is a leading option letter (``B``, ``(B)``, ``B.``) when the options are known, else
    the option whose text has the highest token F1 with the prediction.
    """
    options: Sequence[str] = kwargs.get("options") or ()
    if not options:
        return exact_match_score(prediction, ground_truth)
    m = _letter_pattern(len(options)).match(prediction)
    if m:
        idx = ord((m.group(1) or m.group(2)).upper()) - ord("A")
        picked = options[idx] if idx < len(options) else ""
    else:
        picked = max(options, key=lambda o: qa_f1_score(prediction, o))
    return float(normalize_answer(picked) == normalize_answer(ground_truth))


Metric = Callable[..., float]

#: Metric name -> function (names used in :class:`semtoken_lab.eval.data.Example.metric`).
METRICS: dict[str, Metric] = {
    "qa_f1": qa_f1_score,
    "qa_f1_zh": qa_f1_zh_score,
    "rouge": rouge_l_score,
    "rouge_zh": rouge_zh_score,
    "classification": classification_score,
    "retrieval": retrieval_score,
    "retrieval_zh": retrieval_score,
    "count": count_score,
    "code_sim": code_sim_score,
    "exact_match": exact_match_score,
    "mc_accuracy": mc_accuracy_score,
}

#: LongBench scores only the first line of the prediction for these datasets.
FIRST_LINE_DATASETS = frozenset({"trec", "triviaqa", "samsum", "lsht"})


def score(
    metric: str,
    prediction: str,
    answers: Sequence[str],
    *,
    dataset: str = "",
    **kwargs: Any,
) -> float:
    """Best score of ``prediction`` over the gold ``answers`` (LongBench's ``scorer``)."""
    if dataset in FIRST_LINE_DATASETS:
        prediction = prediction.lstrip("\n").split("\n")[0]
    fn = METRICS[metric]
    return max((fn(prediction, a, **kwargs) for a in answers), default=0.0)


def answer_in_text(answers: Sequence[str], text: str) -> bool:
    """Whether any normalised gold answer occurs as a substring of the normalised text.

    Word boundaries are respected (``" x "`` inside ``" " + text + " "``), so ``"6"`` does not
    match ``"16"``.
    """
    hay = f" {normalize_answer(text)} "
    return any((g := normalize_answer(a)) and f" {g} " in hay for a in answers)
