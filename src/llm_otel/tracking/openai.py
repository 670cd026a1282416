"""``track_openai(client)``: trace one OpenAI client object, no global patching."""

from __future__ import annotations

from typing import Any, TypeVar

C = TypeVar("C")


def track_openai(client: C, tracer_provider: Any = None, meter_provider: Any = None) -> C:
    """Instrument this ``OpenAI`` / ``AsyncOpenAI`` client only and return it (same object).

    Other clients stay untouched; with the global instrumentor on as well, each call is
    still recorded once. The work is the OpenAI instrumentor's ``instrument_client``.
    """
    from llm_otel.instrumentors.openai import instrument_client

    return instrument_client(client, tracer_provider=tracer_provider, meter_provider=meter_provider)
