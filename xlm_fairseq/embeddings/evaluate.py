"""`xlm-embeddings eval`: a bilingual dictionary (MUSE format) and/or a cross-lingual word-similarity set
(SemEval'17) against source and target .vec files, optionally beside a baseline pair of .vec files."""

import math
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import XLMUserError
from .metrics import pair_cosine_l2, pearson, spearman, translation_precision
from .vectors import Vectors


def _open_lines(path: str, what: str):
    if not os.path.isfile(path):
        raise XLMUserError(f"{what} {path} not found")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except UnicodeDecodeError as e:
        raise XLMUserError(f"{what} {path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_dictionary(path: str) -> Tuple[List[Tuple[str, str]], int]:
    """MUSE dictionary: `src tgt` per line (tab or space), several lines per source word allowed.
    Returns the unique pairs in file order and the number of lines skipped (not two fields)."""
    pairs, seen, skipped = [], set(), 0
    for line in _open_lines(path, "dictionary"):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            skipped += 1
            continue
        pair = (parts[0], parts[1])
        if pair not in seen:
            seen.add(pair)
            pairs.append(pair)
    if not pairs:
        raise XLMUserError(f"dictionary {path} has no `source target` line")
    return pairs, skipped


def read_similarity(path: str, gold: Optional[str] = None) -> List[Tuple[str, str, float]]:
    """`word1 word2 score` per line (tab-separated fields, or single spaces between three fields); with
    `gold` (SemEval'17 keeps scores apart), `word1 word2` per line and one score per line of `gold`."""
    lines = [(i, l) for i, l in enumerate(_open_lines(path, "similarity file"), 1) if l.strip()]
    scores = None
    if gold is not None:
        scores = [
            (i, l.split("\t")[0].strip()) for i, l in enumerate(_open_lines(gold, "gold score file"), 1) if l.strip()
        ]
        if len(scores) != len(lines):
            raise XLMUserError(f"{gold} has {len(scores)} scores but {path} has {len(lines)} word pairs")
    want = 2 if gold is not None else 3
    out = []
    for k, (lineno, line) in enumerate(lines):
        parts = [p.strip() for p in line.split("\t")] if "\t" in line else line.split()
        parts = [p for p in parts if p]
        if len(parts) != want:
            raise XLMUserError(
                f"{path}:{lineno}: expected {want} fields (word1 word2{'' if gold else ' score'}), found {len(parts)}"
            )
        where, value = (f"{gold}:{scores[k][0]}", scores[k][1]) if gold is not None else (f"{path}:{lineno}", parts[2])
        try:
            score = float(value)
        except ValueError:
            raise XLMUserError(f"{where}: score '{value}' is not a number") from None
        out.append((parts[0], parts[1], score))
    if not out:
        raise XLMUserError(f"similarity file {path} has no word pair")
    return out


def dictionary_ids(pairs, src: Vectors, tgt: Vectors) -> List[Optional[Tuple[int, int]]]:
    out = []
    for s, t in pairs:
        i, j = src.lookup(s), tgt.lookup(t)
        out.append((i, j) if i is not None and j is not None else None)
    return out


def dictionary_metrics(ids: List[Tuple[int, int]], src: Vectors, tgt: Vectors, csls_k: int = 10) -> Dict[str, float]:
    unique = sorted(set(ids))  # the same (src, tgt) rows reached through different spellings count once
    s = np.array([i for i, _ in unique])
    t = np.array([j for _, j in unique])
    cos, l2 = pair_cosine_l2(src.matrix[s], tgt.matrix[t])
    out = {
        "pairs": len(unique),
        "source_words": len(set(s.tolist())),
        "cosine": float(cos.mean()),
        "l2": float(l2.mean()),
    }
    for method in ("nn", "csls"):
        prec = translation_precision(src.matrix, tgt.matrix, unique, (1, 5), method, csls_k)
        out[f"p@1_{method}"], out[f"p@5_{method}"] = prec[1], prec[5]
    return out


def similarity_ids(items, src: Vectors, tgt: Vectors) -> List[Optional[Tuple[int, int]]]:
    out = []
    for w1, w2, _ in items:
        i, j = src.lookup(w1), tgt.lookup(w2)
        out.append((i, j) if i is not None and j is not None else None)
    return out


def similarity_metrics(ids: List[Tuple[int, int]], gold: List[float], src: Vectors, tgt: Vectors) -> Dict[str, float]:
    s = np.array([i for i, _ in ids])
    t = np.array([j for _, j in ids])
    cos, _ = pair_cosine_l2(src.matrix[s], tgt.matrix[t])
    p, r = pearson(cos, gold), spearman(cos, gold)
    hm = 2 * p * r / (p + r) if math.isfinite(p) and math.isfinite(r) and p + r != 0 else float("nan")
    return {"pairs": len(ids), "pearson": p, "spearman": r, "harmonic_mean": hm}


def evaluate(
    spaces: Dict[str, Tuple[Vectors, Vectors]],
    dictionary: Optional[str] = None,
    similarity: Optional[str] = None,
    similarity_gold: Optional[str] = None,
    csls_k: int = 10,
) -> dict:
    """spaces: {'model': (src, tgt), 'baseline': (src, tgt)}. With several spaces every metric is computed on
    the pairs that all of them cover (the paper compares methods on the same words)."""
    report = {
        "spaces": {
            name: {"src": s.path, "tgt": t.path, "src_words": len(s), "tgt_words": len(t)}
            for name, (s, t) in spaces.items()
        }
    }
    if dictionary is None and similarity is None:
        raise XLMUserError("nothing to evaluate: give --dictionary PAIRS and/or --similarity FILE")
    if dictionary is not None:
        pairs, skipped = read_dictionary(dictionary)
        per_space = {name: dictionary_ids(pairs, s, t) for name, (s, t) in spaces.items()}
        keep = [k for k in range(len(pairs)) if all(ids[k] is not None for ids in per_space.values())]
        found = {name: sum(x is not None for x in ids) for name, ids in per_space.items()}
        if not keep:
            raise XLMUserError(
                f"dictionary {dictionary}: none of its {len(pairs)} pairs has both words in the vocabulary ("
                + "; ".join(
                    f"{name}: {found[name]} pairs, {len(s)} source and {len(t)} target words"
                    for name, (s, t) in spaces.items()
                )
                + "): check the languages of the .vec files and of the dictionary"
            )
        report["dictionary"] = {
            "file": dictionary,
            "pairs": len(pairs),
            "skipped_lines": skipped,
            "in_vocabulary": found,
            "evaluated_pairs": len(keep),
            "source_words": len({pairs[k][0] for k in keep}),
            "metrics": {
                name: dictionary_metrics([per_space[name][k] for k in keep], s, t, csls_k)
                for name, (s, t) in spaces.items()
            },
        }
    if similarity is not None:
        items = read_similarity(similarity, similarity_gold)
        per_space = {name: similarity_ids(items, s, t) for name, (s, t) in spaces.items()}
        keep = [k for k in range(len(items)) if all(ids[k] is not None for ids in per_space.values())]
        found = {name: sum(x is not None for x in ids) for name, ids in per_space.items()}
        if not keep:
            raise XLMUserError(
                f"similarity file {similarity}: none of its {len(items)} word pairs is in the vocabulary ("
                + "; ".join(f"{name}: {found[name]} pairs" for name in spaces)
                + "): check the languages of the .vec files and of the file"
            )
        gold = [items[k][2] for k in keep]
        report["similarity"] = {
            "file": similarity,
            "pairs": len(items),
            "in_vocabulary": found,
            "evaluated_pairs": len(keep),
            "metrics": {
                name: similarity_metrics([per_space[name][k] for k in keep], gold, s, t)
                for name, (s, t) in spaces.items()
            },
        }
    return report


ROWS = {
    "dictionary": [
        ("cosine", "cosine similarity of translation pairs", "{:.4f}"),
        ("l2", "L2 distance of translation pairs", "{:.4f}"),
        ("p@1_nn", "word translation P@1, NN (%)", "{:.2f}"),
        ("p@5_nn", "word translation P@5, NN (%)", "{:.2f}"),
        ("p@1_csls", "word translation P@1, CSLS (%)", "{:.2f}"),
        ("p@5_csls", "word translation P@5, CSLS (%)", "{:.2f}"),
    ],
    "similarity": [
        ("pearson", "word similarity Pearson", "{:.4f}"),
        ("spearman", "word similarity Spearman", "{:.4f}"),
        ("harmonic_mean", "word similarity harmonic mean (SemEval'17 score)", "{:.4f}"),
    ],
}


def format_report(report: dict) -> str:
    names = list(report["spaces"])
    lines = []
    for name, sp in report["spaces"].items():
        tgt = "the same file" if sp["tgt"] == sp["src"] else f"{sp['tgt']} ({sp['tgt_words']} words)"
        lines.append(f"{name}: source {sp['src']} ({sp['src_words']} words), target {tgt}")
    for part, what in (("dictionary", "pairs"), ("similarity", "word pairs")):
        if part not in report:
            continue
        r = report[part]
        found = ", ".join(f"{n} {r['in_vocabulary'][n]}" for n in names)
        note = f"; {r['skipped_lines']} malformed line(s) skipped" if r.get("skipped_lines") else ""
        common = f" (all spaces: {r['evaluated_pairs']})" if len(names) > 1 else ""
        words = f", {r['source_words']} source words" if part == "dictionary" else ""
        lines.append(f"{part} {r['file']}: {r['pairs']} {what}; in the vocabulary: {found}{common}{words}{note}")
    width = max(len(label) for rows in ROWS.values() for _, label, _ in rows) + 2
    lines.append("")
    lines.append(f"{'metric':<{width}}" + "".join(f"{n:>12}" for n in names))
    for part, rows in ROWS.items():
        if part not in report:
            continue
        for key, label, fmt in rows:
            values = [report[part]["metrics"][n][key] for n in names]
            cells = [fmt.format(v) if math.isfinite(v) else "n/a" for v in values]
            lines.append(f"{label:<{width}}" + "".join(f"{c:>12}" for c in cells))
    return "\n".join(lines)
