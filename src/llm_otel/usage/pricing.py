"""Model prices (USD per 1M tokens) and the cost of one recorded LLM call.

Three layers, first match wins: prices set with :func:`set_price`, the JSON file named by
``LLM_OTEL_PRICES_FILE`` (both matched by model name, exact or without a date suffix), then the
price data bundled in the ``genai-prices`` package (Pydantic's maintained table), matched the way
genai-prices matches: within the call's provider when it names one, else by the model name. Only
the bundled data is read; genai-prices' network updater is never started. A model found nowhere
has no cost (None): a wrong number on a bill is worse than none.

A resolved (provider, model) is kept in a bounded LRU cache: a genai-prices lookup costs 0.01-1 ms,
and model names can come from user input or a proxy, so an unbounded table would grow without end.
"""

from __future__ import annotations

import bisect
import importlib
import importlib.util
import json
import logging
import os
import re
import sys
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from llm_otel.core.forksafe import ForkSafeLock
from llm_otel.core.guard import report
from llm_otel.core.preload import Preload

logger = logging.getLogger("llm_otel")

PRICES_FILE_ENV = "LLM_OTEL_PRICES_FILE"
CACHE_SIZE = 4096  # (provider, model) pairs kept resolved
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
_PER = 1_000_000

# ``gen_ai.provider.name`` (OTel GenAI conventions) -> genai-prices provider id. Other names are
# looked up as genai-prices looks up a provider id; a name it does not know prices by model.
_PROVIDER_IDS = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "x_ai": "x-ai",
    "cohere": "cohere",
    "perplexity": "perplexity",
}


class Price(NamedTuple):
    """USD per 1M tokens; ``cached_input`` / ``cache_write`` default to ``input``."""

    input: float
    output: Optional[float] = None
    cached_input: Optional[float] = None
    cache_write: Optional[float] = None


class _Card(NamedTuple):
    """What a call costs under one price: rates per 1M tokens and a fee per call."""

    price: Price
    per_call: float = 0.0


_Entry = Any  # a Price from set_price / the file, or a genai-prices ModelInfo

_lock = ForkSafeLock()
_user: Dict[str, Price] = {}
_file: Optional[Dict[str, Price]] = None
_providers: Optional[List[Any]] = None  # genai-prices' bundled data, loaded on first use
_cache: "OrderedDict[Tuple[Optional[str], str], Optional[_Entry]]" = OrderedDict()
_generation = 0  # bumped when a layer changes, so a lookup that raced the change is not kept
# id(genai-prices ModelInfo) -> (its price in force, that price's tier starts, {tier: card}). Its
# data lives as long as the process: one slot per model it lists, however many names match one.
_cards: Dict[int, Tuple[Any, List[int], Dict[int, _Card]]] = {}


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


def _file_prices() -> Dict[str, Price]:
    global _file
    table = _file
    if table is None:
        table = {}
        path = os.environ.get(PRICES_FILE_ENV)
        if path:
            try:
                table = _parse(json.loads(Path(path).read_text()), path)
            except (OSError, ValueError) as exc:
                logger.warning("llm_otel: %s=%r not used: %s", PRICES_FILE_ENV, path, exc)
        _file = table
    return table


def _load_bundled() -> None:
    global _providers
    try:
        providers = _price_data().providers
    except Exception as exc:  # noqa: BLE001 - no bundled prices: the other layers still work
        report("pricing: loading genai-prices", exc)
        providers = []
    _providers = providers


def _price_data() -> Any:
    """``genai_prices.data``, without running the package's ``__init__`` on this thread.

    That ``__init__`` imports an HTTP client for genai-prices' price updater (which llm-otel
    never starts). A module being imported sits half-made in ``sys.modules``, and the OpenAI
    SDK looks its HTTP clients up there without importing them: loaded in the background,
    ``openai.OpenAI(...)`` on another thread could find ``httpx2`` without ``Client``. So the
    package is registered unexecuted, its data and types modules are imported (normally,
    under the import locks), and its ``__init__`` runs the first time anyone reads an
    attribute the package has not got yet (``genai_prices.calc_price``, ``from genai_prices
    import Usage``): on their thread, as their own import would have.
    """
    if "genai_prices" not in sys.modules:
        spec = importlib.util.find_spec("genai_prices")  # a top-level name: nothing is run
        if spec is not None and spec.loader is not None and spec.submodule_search_locations is not None:
            package = importlib.util.module_from_spec(spec)
            package.__getattr__ = _RunInitOnce(package, spec)  # type: ignore[attr-defined]
            sys.modules.setdefault("genai_prices", package)  # an import elsewhere may have won
    return importlib.import_module("genai_prices.data")


class _RunInitOnce:
    """The registered package's module ``__getattr__`` (PEP 562): runs its real ``__init__``."""

    def __init__(self, package: Any, spec: Any) -> None:
        self.package, self.spec = package, spec
        self.lock = threading.Lock()

    def __call__(self, name: str) -> Any:
        namespace = self.package.__dict__
        with self.lock:
            if namespace.get("__getattr__") is self:
                del namespace["__getattr__"]
                exec(self.spec.loader.get_code(self.spec.name), namespace)  # noqa: S102 - its own code
        try:
            return namespace[name]
        except KeyError:
            raise AttributeError(f"module {self.spec.name!r} has no attribute {name!r}") from None


#: genai-prices' data, loaded in the background from instrument time on; the core finishes a
#: call that ends before it is there once it is (see llm_otel.core.preload)
PRICES = Preload("genai-prices", _load_bundled)


def _bundled() -> List[Any]:
    """genai-prices' bundled providers (its module data, never a snapshot its updater fetched).
    A direct caller (``cost_usd``, ``doctor``) loads them if they are not there yet."""
    if _providers is None:
        PRICES.load_here()
    return _providers or []


def _tier_starts(price: Any) -> List[int]:
    from genai_prices.types import TieredPrices

    return sorted({tier.start for value in vars(price).values() if isinstance(value, TieredPrices)
                   for tier in value.tiers if tier.start > 0})


def _probe(price: Any, starts: List[int], tier: int) -> _Card:
    """Ask genai-prices what each kind of token costs in ``tier``: its cost is linear within a tier."""
    from genai_prices.types import Usage

    size = starts[tier] if tier < len(starts) else (starts[-1] + 1 if starts else _PER)

    def cost(**usage: int) -> Decimal:
        return price.calc_price(Usage(**usage))["total_price"]

    fee = cost()
    prompt = cost(input_tokens=size)

    def per_million(total: Decimal) -> float:
        return float((total - fee) * _PER / size)

    output = float(cost(input_tokens=size, output_tokens=_PER) - prompt)
    output_priced = any(key.startswith("output") and value is not None for key, value in vars(price).items())
    return _Card(Price(per_million(prompt), output if output_priced else None,
                       per_million(cost(input_tokens=size, cache_read_tokens=size)),
                       per_million(cost(input_tokens=size, cache_write_tokens=size))), float(fee))


def _genai_provider(providers: List[Any], name: str) -> Any:
    wanted = _PROVIDER_IDS.get(name, name)
    return (next((p for p in providers if p.id == wanted), None)
            or next((p for p in providers if p.provider_match is not None and p.provider_match.is_match(wanted)),
                    None))


def _resolve(provider: Optional[str], model: str) -> Optional[_Entry]:
    for table in (_user, _file_prices()):
        for name in dict.fromkeys((model, _DATE_SUFFIX.sub("", model))):
            if name in table:
                return table[name]
    providers = _bundled()
    found = _genai_provider(providers, provider) if provider else None
    if found is None:  # no provider, or one genai-prices does not know: by the model, as genai-prices does
        found = next((p for p in providers if p.model_match is not None and p.model_match.is_match(model)), None)
    return found.find_model(model, all_providers=providers) if found is not None else None


def _entry(provider: Optional[str], model: Optional[str]) -> Optional[_Entry]:
    if not model or not isinstance(model, str):
        return None
    key = (provider.strip().lower() if isinstance(provider, str) and provider.strip() else None,
           model.strip().lower())
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        generation = _generation
    entry = _resolve(*key)
    with _lock:
        if generation == _generation:
            _cache[key] = entry
            if len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return entry


def _card(entry: _Entry, input_tokens: int) -> _Card:
    """The card in force now for a call of ``input_tokens`` (a tier is chosen by the whole input)."""
    if isinstance(entry, Price):
        return _Card(entry)
    price = entry.get_prices(datetime.now(timezone.utc))
    cards = _cards.get(id(entry))
    if cards is None or cards[0] is not price:  # first use, or a new price period began
        cards = _cards[id(entry)] = (price, _tier_starts(price), {})
    tier = bisect.bisect_left(cards[1], input_tokens)  # a tier applies above its start
    card = cards[2].get(tier)
    if card is None:  # derived once from genai-prices' own arithmetic (its calc_price costs ~0.1 ms)
        card = cards[2][tier] = _probe(price, cards[1], tier)
    return card


def price_for(model: Optional[str], provider: Optional[str] = None) -> Optional[Price]:
    """The price of ``model`` in force now (for a tiered price, its first tier), or None.

    ``provider`` is the call's ``gen_ai.provider.name`` (``openai``, ``anthropic``,
    ``aws.bedrock``, ``gcp.vertex_ai`` ...); it picks the provider's own price list.
    """
    entry = _entry(provider, model)
    return None if entry is None else _card(entry, 0).price


def set_price(model: str, input: float, output: Optional[float] = None, cached_input: Optional[float] = None,
              cache_write: Optional[float] = None) -> None:
    """Set or override a model's price, in USD per 1M tokens (wins over every other source)."""
    global _generation
    if not isinstance(model, str) or not model.strip():
        raise ValueError("set_price: model must be a non-empty string")
    price = Price(_number(input, model) or 0.0, _number(output, model), _number(cached_input, model),
                  _number(cache_write, model))
    with _lock:
        _user[model.strip().lower()] = price
        _cache.clear()
        _generation += 1


def reload_prices(clear_overrides: bool = False) -> None:
    """Re-read ``LLM_OTEL_PRICES_FILE`` (and drop :func:`set_price` overrides if asked)."""
    global _file, _generation
    with _lock:
        _file = None
        _cache.clear()
        _generation += 1
        if clear_overrides:
            _user.clear()


def load_prices() -> List[str]:
    """Load every price source now and say what each holds (for ``llm-otel doctor``).

    Importing genai-prices and its data takes 0.1-0.4 s once; called at start-up, it keeps that
    wait off the first priced LLM call.
    """
    providers = _bundled()
    sources = [f"set_price: {len(_user)} models"]
    if os.environ.get(PRICES_FILE_ENV):
        sources.append(f"{PRICES_FILE_ENV}={os.environ[PRICES_FILE_ENV]}: {len(_file_prices())} models")
    if providers:
        sources.append(f"genai-prices {metadata.version('genai-prices')} bundled data: {sum(len(p.models) for p in providers)} models "
                       f"of {len(providers)} providers")
    else:
        sources.append("genai-prices: not available")
    return sources


def cost_usd(model: Optional[str], input_tokens: Optional[int], output_tokens: Optional[int],
             cached_input_tokens: Optional[int] = None, cache_write_tokens: Optional[int] = None,
             fallback_model: Optional[str] = None, *, provider: Optional[str] = None) -> Optional[float]:
    """Cost of one call in USD, at the price in force now.

    ``input_tokens`` is the whole prompt: it includes the cached and the cache-write tokens, as
    OpenAI and the GenAI conventions count it (Anthropic's API reports ``input_tokens`` without
    them: add them first). ``provider`` is the call's ``gen_ai.provider.name``.

    None when neither ``model`` nor ``fallback_model`` has a price, when there is no usage, when
    the cached tokens exceed the input, or when the call has output tokens and the price has no
    output rate.
    """
    if input_tokens is None and output_tokens is None:
        return None
    total_in, output = input_tokens or 0, output_tokens or 0
    cached, written = cached_input_tokens or 0, cache_write_tokens or 0
    plain = total_in - cached - written
    if min(plain, cached, written, output) < 0:
        return None
    entry = _entry(provider, model) or _entry(provider, fallback_model)
    if entry is None:
        return None
    price, per_call = _card(entry, total_in)
    if output and price.output is None:
        return None
    rate_cached = price.cached_input if price.cached_input is not None else price.input
    rate_write = price.cache_write if price.cache_write is not None else price.input
    dollars = plain * price.input + cached * rate_cached + written * rate_write + output * (price.output or 0.0)
    return per_call + dollars / _PER
