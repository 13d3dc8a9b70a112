"""Cross-lingual word-embedding metrics, numpy only (paper Table 5; MUSE's evaluation protocol).

- translation pairs: mean cosine similarity and mean L2 distance of the (raw) vectors of gold pairs;
- word translation: precision@k of nearest-neighbour and CSLS retrieval over the whole target vocabulary,
  with unit-normalised vectors; a source word counts as correct when any of its gold translations is among
  its k best (MUSE: `get_word_translation_accuracy`); CSLS(x, y) = 2 cos(x, y) - r_T(x) - r_S(y), r the mean
  cosine of the 10 nearest neighbours in the other language (Conneau et al. 2018);
- word similarity: Pearson and Spearman (average ranks for ties) between cosine and gold scores.
"""

from typing import Dict, Iterable, Sequence

import numpy as np

MAX_CELLS = 32_000_000  # similarity-matrix cells computed at once (~128 MB of float32)


def _chunk(n_keys: int) -> int:
    return max(1, min(4096, MAX_CELLS // max(1, n_keys)))


def normalize(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


def pair_cosine_l2(src: np.ndarray, tgt: np.ndarray):
    """Cosine similarity and L2 distance of row i of src with row i of tgt (float64 arrays)."""
    src, tgt = np.asarray(src, dtype=np.float64), np.asarray(tgt, dtype=np.float64)
    dot = np.sum(src * tgt, axis=1)
    norms = np.linalg.norm(src, axis=1) * np.linalg.norm(tgt, axis=1)
    cos = np.where(norms > 0, dot / np.maximum(norms, 1e-300), 0.0)
    return cos, np.linalg.norm(src - tgt, axis=1)


def mean_topk_similarity(queries: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """For each (normalised) query row, the mean cosine of its k most similar (normalised) key rows."""
    k = min(k, len(keys))
    out = np.empty(len(queries), dtype=np.float64)
    step = _chunk(len(keys))
    for start in range(0, len(queries), step):
        sims = queries[start : start + step] @ keys.T
        top = np.partition(sims, len(keys) - k, axis=1)[:, len(keys) - k :]
        out[start : start + step] = top.mean(axis=1)
    return out


def _topk_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores of each row, best first (equal scores: lower index first)."""
    k = min(k, scores.shape[1])
    if k == scores.shape[1]:
        return np.lexsort((np.broadcast_to(np.arange(k), scores.shape), -scores), axis=1)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1)


def translation_precision(
    src: np.ndarray, tgt: np.ndarray, pairs: Iterable, ks: Sequence[int] = (1, 5), method: str = "nn", csls_k: int = 10
) -> Dict[int, float]:
    """Precision@k (in %) of retrieving a gold translation of each source word of `pairs` ((src row, tgt
    row), several per source word allowed) among all rows of `tgt`, by `method` 'nn' or 'csls'."""
    pairs = np.asarray(list(pairs), dtype=np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        raise ValueError("no translation pairs")
    src_n, tgt_n = normalize(src), normalize(tgt)
    queries = np.unique(pairs[:, 0])
    gold = {}
    for s, t in pairs:
        gold.setdefault(int(s), set()).add(int(t))
    if method == "csls":
        r_src = mean_topk_similarity(src_n[queries], tgt_n, csls_k)  # r_T(x) for the queries
        r_tgt = mean_topk_similarity(tgt_n, src_n, csls_k)  # r_S(y) for every target word
    elif method != "nn":
        raise ValueError(f"unknown retrieval method {method}")
    kmax = max(ks)
    hits = {k: 0 for k in ks}
    step = _chunk(len(tgt_n))
    for start in range(0, len(queries), step):
        q = queries[start : start + step]
        scores = (src_n[q] @ tgt_n.T).astype(np.float64)
        if method == "csls":
            scores = 2 * scores - r_src[start : start + step, None] - r_tgt[None, :]
        top = _topk_indices(scores, kmax)
        for row, s in enumerate(q):
            ranked = top[row].tolist()
            for k in ks:
                if gold[int(s)].intersection(ranked[:k]):
                    hits[k] += 1
    return {k: 100.0 * hits[k] / len(queries) for k in ks}


def rankdata(values) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def pearson(x, y) -> float:
    """Pearson correlation; nan with fewer than 2 values or a constant side."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denom) if denom > 0 else float("nan")


def spearman(x, y) -> float:
    """Spearman correlation: Pearson of the average ranks (handles ties)."""
    return pearson(rankdata(x), rankdata(y))
