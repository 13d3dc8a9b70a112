"""XLM's command-line mini-languages (facebookresearch/XLM `xlm/data/loader.py: check_data_params`,
`xlm/utils.py: parse_lambda_config`): languages, step lists, lambda schedules and
the language sampling distribution. Errors name the flag and say what is expected."""

from typing import Dict, List, Sequence, Tuple

import numpy as np

from .errors import ConfigError  # noqa: E402  (re-exported for the tasks)


def parse_langs(value: str) -> List[str]:
    langs = [l.strip() for l in (value or "").split(",") if l.strip()]
    if not langs:
        raise ConfigError("--langs is required, e.g. --langs en,fr")
    if len(set(langs)) != len(langs):
        raise ConfigError(f"--langs {value}: a language is listed twice")
    for l in langs:
        if "-" in l:
            raise ConfigError(f"--langs {value}: '{l}' contains '-'; separate languages with commas")
    return sorted(langs)  # language ids are the index in the sorted list, as XLM


def parse_steps(flag: str, value: str, langs: Sequence[str], n_parts: Sequence[int]) -> List[Tuple[str, ...]]:
    """'en,fr,en-fr' -> [('en',), ('fr',), ('en', 'fr')]; n_parts lists the allowed item sizes."""
    steps = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        parts = tuple(item.split("-"))
        if len(parts) not in n_parts:
            allowed = " or ".join({1: "'xx'", 2: "'xx-yy'", 3: "'xx-yy-xx'"}[n] for n in n_parts)
            raise ConfigError(f"--{flag} {value}: malformed step '{item}', expected {allowed}")
        for l in parts:
            if l not in langs:
                raise ConfigError(f"--{flag}: language '{l}' of step '{item}' is not in --langs {','.join(langs)}")
        if item in [("-".join(s)) for s in steps]:
            raise ConfigError(f"--{flag} {value}: step '{item}' is listed twice")
        steps.append(parts)
    return steps


class LambdaSchedule:
    """'x' (constant) or 'i0:v0,i1:v1,...' piecewise linear in iterations, constant after the last point."""

    def __init__(self, flag: str, value: str):
        self.flag, self.text = flag, str(value)
        try:
            if ":" not in self.text:
                self.points = [(0, float(self.text))]
            else:
                self.points = []
                for part in self.text.split(","):
                    i, v = part.split(":")
                    self.points.append((int(i), float(v)))
        except ValueError:
            raise ConfigError(
                f"--{flag} {value}: expected a number or 'iter:value,iter:value,...' (e.g. 0:1,100000:0.1,300000:0)"
            ) from None
        iters = [i for i, _ in self.points]
        if iters[0] != 0:
            raise ConfigError(f"--{flag} {value}: the schedule must start at iteration 0")
        if any(b <= a for a, b in zip(iters, iters[1:])):
            raise ConfigError(f"--{flag} {value}: iterations must be strictly increasing")

    def __call__(self, iteration: int) -> float:
        pts = self.points
        if iteration >= pts[-1][0]:
            return pts[-1][1]
        for (i0, v0), (i1, v1) in zip(pts, pts[1:]):
            if i0 <= iteration < i1:
                return v0 + (v1 - v0) * (iteration - i0) / (i1 - i0)
        return pts[0][1]


def sampling_probs(counts: Dict[str, int], factor: float) -> Dict[str, float]:
    """q_k = p_k^a / sum_j p_j^a with p_k = n_k / sum n (uniform when factor == -1)."""
    keys = list(counts)
    if factor == -1 or factor is None:
        return {k: 1.0 / len(keys) for k in keys}
    if factor <= 0:
        raise ConfigError(f"--lg-sampling-factor {factor}: must be > 0, or -1 for uniform sampling")
    n = np.array([counts[k] for k in keys], dtype=np.float64)
    p = n / n.sum()
    q = p**factor
    q /= q.sum()
    return dict(zip(keys, q.tolist()))


def parse_float_triple(flag: str, value: str) -> Tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or any(p < 0 for p in parts) or abs(sum(parts) - 1) > 1e-6:
        raise ConfigError(f"--{flag} {value}: expected three non-negative numbers summing to 1, e.g. 0.8,0.1,0.1")
    return parts


def pair_key(a: str, b: str) -> Tuple[str, str]:
    return (a, b) if a < b else (b, a)
