"""Fine-tuning dataset export: recorded chat calls as OpenAI chat fine-tuning JSONL."""

from llm_otel.finetune.convert import Unconvertible, convert_message, example_from_span
from llm_otel.finetune.export import (FineTuningExporter, Filters, Report, build_examples, parse_when,
                                      write_examples)
from llm_otel.finetune.validate import validate_example

__all__ = ["Filters", "FineTuningExporter", "Report", "Unconvertible", "build_examples", "convert_message",
           "example_from_span", "parse_when", "validate_example", "write_examples"]
