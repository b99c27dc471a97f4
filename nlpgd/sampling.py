"""How messages are sampled: the one settings type and its defaults, checked in one place.

:class:`SamplingSettings` holds what every token-by-token sampler takes (``temperature``,
``top_k``, ``top_p``, ``max_new_tokens``, and the optional ``typical_p`` (locally typical
sampling, Meister et al. 2023; 1 is off) and ``min_p`` (tokens below ``min_p`` times the most
likely token's probability are cut; 0 is off)); word samplers (naive Bayes) read only the
temperature. The defaults below are the only place they are written: the ``generation:`` and
``experiment.augmentation`` config sections, the ``nlpgd generate`` options and the models'
``generate`` all take them from here. A bad value is one sentence (:class:`NlpgdError`).

The sampling itself (the ``generate`` call on a causal LM, distinct samples in seeded
rounds, prompts and chat instructions) is :mod:`nlpgd.models.lm_sampling`; this module
needs no torch, so configs and the CLI can use it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from nlpgd.errors import NlpgdError

TEMPERATURE = 1.0
TOP_K = 50  # 0 disables it
TOP_P = 0.95
MAX_NEW_TOKENS = 64
TYPICAL_P = 1.0  # 1 disables it
MIN_P = 0.0  # 0 disables it
FIELDS = ("temperature", "top_k", "top_p", "max_new_tokens", "typical_p", "min_p")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise NlpgdError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise NlpgdError(f"{name} must be a whole number, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class SamplingSettings:
    """Checked sampling settings; ``SamplingSettings(temperature=0)`` is one sentence."""

    temperature: float = TEMPERATURE
    top_k: int = TOP_K
    top_p: float = TOP_P
    max_new_tokens: int = MAX_NEW_TOKENS
    typical_p: float = TYPICAL_P
    min_p: float = MIN_P

    def __post_init__(self) -> None:
        temperature = _number("temperature", self.temperature)
        if temperature <= 0:
            raise NlpgdError(f"temperature must be positive, got {self.temperature!r}")
        top_k = _integer("top_k", self.top_k)
        if top_k < 0:
            raise NlpgdError(f"top_k must be >= 0 (0 disables it), got {self.top_k!r}")
        top_p = _number("top_p", self.top_p)
        if not 0 < top_p <= 1:
            raise NlpgdError(f"top_p must lie in (0, 1], got {self.top_p!r}")
        max_new = _integer("max_new_tokens", self.max_new_tokens)
        if max_new <= 0:
            raise NlpgdError(f"max_new_tokens must be positive, got {self.max_new_tokens!r}")
        typical_p = _number("typical_p", self.typical_p)
        if not 0 < typical_p <= 1:
            raise NlpgdError(f"typical_p must lie in (0, 1] (1 disables it), got {self.typical_p!r}")
        min_p = _number("min_p", self.min_p)
        if not 0 <= min_p < 1:
            raise NlpgdError(f"min_p must lie in [0, 1) (0 disables it), got {self.min_p!r}")
        for name, value in zip(FIELDS, (temperature, top_k, top_p, max_new, typical_p, min_p)):
            object.__setattr__(self, name, value)  # plain Python numbers from here on

    @classmethod
    def of(cls, source: Any) -> "SamplingSettings":
        """The settings of a config section (or any object) with these attributes (those it
        lacks take their defaults)."""
        return cls(**{k: getattr(source, k) for k in FIELDS if hasattr(source, k)})

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "SamplingSettings":
        """The settings from keyword options (defaults for those not given); an unknown
        option is one sentence."""
        unknown = sorted(set(options) - set(FIELDS))
        if unknown:
            raise NlpgdError(f"unknown sampling setting '{unknown[0]}' (settings: {', '.join(FIELDS)})")
        return cls(**options)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_count(n: Any) -> int:
    """``n`` as the number of samples to draw: a positive integer, else one sentence."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
        raise NlpgdError(f"number of samples must be a positive integer, got {n!r}")
    return int(n)
