"""Model prices (USD per 1M tokens) and the cost of one recorded LLM call.

Three layers, first match wins: prices set with :func:`set_price`, the JSON file named
by ``LLM_OTEL_PRICES_FILE``, and the ``prices.json`` shipped here (dated, with its
source). A model name is looked up as given, then without a date suffix
(``gpt-4o-mini-2024-07-18`` -> ``gpt-4o-mini``). A model found nowhere has no cost
(None): a wrong number on a bill is worse than none.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any, Dict, NamedTuple, Optional

logger = logging.getLogger("llm_otel")

PRICES_FILE_ENV = "LLM_OTEL_PRICES_FILE"
_BUILTIN = Path(__file__).with_name("prices.json")
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
_PER = 1_000_000


class Price(NamedTuple):
    """USD per 1M tokens; ``cached_input`` / ``cache_write`` default to ``input``."""

    input: float
    output: Optional[float] = None
    cached_input: Optional[float] = None
    cache_write: Optional[float] = None


_lock = threading.Lock()
_user: Dict[str, Price] = {}
_tables: Optional[Dict[str, Dict[str, Price]]] = None  # "file", "builtin"
_resolved: Dict[str, Optional[Price]] = {}


def _number(value: Any, what: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{what}: a price must be a non-negative number, not {value!r}")
    return float(value)


def _parse(data: Any, source: str) -> Dict[str, Price]:
    models = data.get("models", data) if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise ValueError(f"{source}: expected {{\"models\": {{name: {{\"input\": ..}}}}}}")
    table: Dict[str, Price] = {}
    for name, entry in models.items():
        if name.startswith("_") or not isinstance(entry, dict):
            continue  # header fields (_source, _as_of, unit)
        what = f"{source}: {name}"
        table[name.strip().lower()] = Price(_number(entry.get("input", 0.0), what) or 0.0,
                                            _number(entry.get("output"), what),
                                            _number(entry.get("cached_input"), what),
                                            _number(entry.get("cache_write"), what))
    return table


def _load() -> Dict[str, Dict[str, Price]]:
    global _tables
    tables = _tables
    if tables is not None:
        return tables
    tables = {"file": {}, "builtin": _parse(json.loads(_BUILTIN.read_text()), "prices.json")}
    path = os.environ.get(PRICES_FILE_ENV)
    if path:
        try:
            tables["file"] = _parse(json.loads(Path(path).read_text()), path)
        except (OSError, ValueError) as exc:
            logger.warning("llm_otel: %s=%r not used: %s", PRICES_FILE_ENV, path, exc)
    _tables = tables
    return tables


def price_for(model: Optional[str]) -> Optional[Price]:
    """The price of ``model`` (exact name first, then without a date suffix), or None."""
    if not model or not isinstance(model, str):
        return None
    key = model.strip().lower()
    try:
        return _resolved[key]
    except KeyError:
        pass
    tables = _load()
    layers = (_user, tables["file"], tables["builtin"])
    price = None
    for candidate in dict.fromkeys((key, _DATE_SUFFIX.sub("", key))):
        price = next((layer[candidate] for layer in layers if candidate in layer), None)
        if price is not None:
            break
    with _lock:
        _resolved[key] = price
    return price


def set_price(model: str, input: float, output: Optional[float] = None, cached_input: Optional[float] = None,
              cache_write: Optional[float] = None) -> None:
    """Set or override a model's price, in USD per 1M tokens (wins over every file)."""
    if not isinstance(model, str) or not model.strip():
        raise ValueError("set_price: model must be a non-empty string")
    price = Price(_number(input, model) or 0.0, _number(output, model), _number(cached_input, model),
                  _number(cache_write, model))
    with _lock:
        _user[model.strip().lower()] = price
        _resolved.clear()


def reload_prices(clear_overrides: bool = False) -> None:
    """Re-read ``LLM_OTEL_PRICES_FILE`` (and drop :func:`set_price` overrides if asked)."""
    global _tables
    with _lock:
        _tables = None
        _resolved.clear()
        if clear_overrides:
            _user.clear()


def cost_usd(model: Optional[str], input_tokens: Optional[int], output_tokens: Optional[int],
             cached_input_tokens: Optional[int] = None, cache_write_tokens: Optional[int] = None,
             fallback_model: Optional[str] = None) -> Optional[float]:
    """Cost of one call; ``input_tokens`` includes the cached and cache-write tokens.

    None when the model has no price, when there is no usage, or when the call has
    output tokens and the price has no output rate.
    """
    if input_tokens is None and output_tokens is None:
        return None
    price = price_for(model) or price_for(fallback_model)
    if price is None:
        return None
    if output_tokens and price.output is None:
        return None
    total_in = input_tokens or 0
    cached = min(cached_input_tokens or 0, total_in)
    written = min(cache_write_tokens or 0, total_in - cached)
    plain = total_in - cached - written
    rate_cached = price.cached_input if price.cached_input is not None else price.input
    rate_write = price.cache_write if price.cache_write is not None else price.input
    dollars = (plain * price.input + cached * rate_cached + written * rate_write
               + (output_tokens or 0) * (price.output or 0.0))
    return dollars / _PER
