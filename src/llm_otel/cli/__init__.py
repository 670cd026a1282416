"""The ``llm-otel`` command (``tree``, ``finetune``, ``doctor``); exit codes in :mod:`llm_otel.cli.main`."""

from llm_otel.cli.main import (EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_IO, EXIT_NO_DATA, EXIT_OK, EXIT_PROBLEMS,
                               EXIT_USAGE, main)

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERNAL", "EXIT_IO", "EXIT_NO_DATA", "EXIT_OK", "EXIT_PROBLEMS", "EXIT_USAGE",
           "main"]
