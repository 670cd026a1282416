"""Tags and feedback recorded with llm_otel.tracking select fine-tuning examples, also when
the feedback arrives after the trace ended (a ``feedback`` span in the same trace)."""

from __future__ import annotations

import io

from exporters.trace_factory import chat, user
from llm_otel.core.recorder import get_recorder
from llm_otel.exporters import ConsoleTreeExporter, JsonlFileExporter, read_spans
from llm_otel.finetune import Filters, build_examples
from llm_otel.tracking import get_current_trace_id, record_feedback, track, update_current_trace


def _answer(question: str, answer: str) -> None:
    chat(get_recorder(), [user(question)], [{"role": "assistant", "parts": [{"type": "text", "content": answer}],
                                             "finish_reason": "stop"}], tools=None, system=None)


@track(name="support bot", tags=["prod"])
def bot(question: str, answer: str, golden: bool = False, score=None) -> str:
    _answer(question, answer)
    if golden:
        update_current_trace(tags=["golden"])
    if score is not None:
        update_current_trace(feedback_scores=[{"name": "thumbs", "value": score}])
    return get_current_trace_id()


def test_tracking_tags_and_late_feedback_select_examples(spans, capture_content, tmp_path):
    bot("What is OTel?", "An observability framework.", golden=True, score=1)  # feedback while open
    late_good = bot("What is a span?", "One unit of work in a trace.")
    late_bad = bot("What is a trace?", "A kind of fish.", score=1)
    bot("What is a metric?", "A measurement.")  # never rated
    record_feedback(late_good, "thumbs", 1.0)  # after the trace ended
    record_feedback(late_bad, "thumbs", 0.0)  # the later score replaces the earlier one
    path = tmp_path / "traces.jsonl"
    JsonlFileExporter(path).export(spans())
    read, bad = read_spans(path)
    assert bad == []
    assert sum(1 for s in read if s.name == "feedback") == 2

    examples, report = build_examples(read, Filters(feedback_name="thumbs", min_feedback=0.5))
    assert [e["messages"][0]["content"] for e in examples] == ["What is OTel?", "What is a span?"]
    assert report.counts() == {"filtered: feedback": 2}

    examples, _ = build_examples(read, Filters(tag="golden"))
    assert [e["messages"][0]["content"] for e in examples] == ["What is OTel?"]
    assert len(build_examples(read, Filters(tag="prod"))[0]) == 4

    out = io.StringIO()
    exporter = ConsoleTreeExporter(out=out, color=False)
    for span in spans():  # as a SimpleSpanProcessor sees them
        exporter.export([span])
    text = out.getvalue()
    assert text.count("support bot") == 4 and text.count("\nfeedback ") == 2  # late spans print on their own
    assert len(exporter._buffer) == 0
