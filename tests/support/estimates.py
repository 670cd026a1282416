"""Where a span keeps its locally estimated tokens, by estimate mode (see conftest.estimate_mode)."""


def estimated_tokens(attributes, mode: str, kind: str):
    """The locally estimated ``kind`` ("input"/"output") tokens of a span, checking that the
    estimate sits where ``mode`` puts it and nowhere else."""
    own = f"llm_otel.usage.estimated_{kind}_tokens"
    usage = f"gen_ai.usage.{kind}_tokens"
    if mode == "report":
        assert attributes["llm_otel.usage.estimated"] is True and own not in attributes
        return attributes[usage]
    assert usage not in attributes and "llm_otel.usage.estimated" not in attributes
    return attributes[own]
