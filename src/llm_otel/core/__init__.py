"""The core: the one door through which instrumentors reach llm-otel.

An instrumentor imports from here and nowhere else in llm-otel (a test enforces it). It
fills in plain records and hands them to a recorder; the core alone names attributes,
reads the configuration, converts content, counts tokens, prices calls and records
metrics. See docs/architecture.md.

::

    recorder = get_recorder(tracer_provider, meter_provider)   # once, when instrumenting
    op = recorder.start(LLMInvocation(request_model=..., ...))   # a call begins
    if not op:                                                    # suppressed: call through
        return wrapped(*args, **kwargs)
    with op.current():                                            # its span is current inside
        result = wrapped(*args, **kwargs)                         # (fail it on an exception)
    op.record.response_id = ...                                   # fill in the response
    op.end()                                                      # once; the core records it
"""

from llm_otel.core.forksafe import ForkSafeLock
from llm_otel.core.guard import guarded, report
from llm_otel.core.instrumentor import LibraryInstrumentor, patch, unpatch
from llm_otel.core.mapping import tool_arguments
from llm_otel.core.operation import (Operation, carry_context, carry_context_async, current_trace_id, each_step,
                                     each_step_async, wrapped_by_each_step)
from llm_otel.core.recorder import Recorder, add_end_hook, get_recorder, recorder_for, suppressed
from llm_otel.core.records import LLMInvocation, StepInvocation, ToolInvocation
from llm_otel.core.secrets import register_secret

__all__ = ["ForkSafeLock", "LLMInvocation", "LibraryInstrumentor", "Operation", "Recorder", "StepInvocation",
           "ToolInvocation", "add_end_hook", "carry_context", "carry_context_async", "current_trace_id", "each_step",
           "each_step_async", "get_recorder", "guarded", "patch", "recorder_for", "register_secret", "report", "suppressed", "tool_arguments", "unpatch",
           "wrapped_by_each_step"]
