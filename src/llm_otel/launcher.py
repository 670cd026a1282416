"""Local mode for ``opentelemetry-instrument`` (see :mod:`llm_otel.local_mode`).

The launcher imports every ``opentelemetry_environment_variables`` entry point before it
starts the program, which inherits its environment; the distro's OTLP defaults are set
later, in the program. Importing this module (our entry point in that group) is therefore
the one moment at which an unset metrics or logs exporter can still default to ``none``.
It defines no ``OTEL_*`` names, so it adds no command-line option to the launcher.
"""

import logging

try:
    from llm_otel import local_mode

    local_mode.apply()
except Exception:  # noqa: BLE001 - never stop the launcher
    logging.getLogger("llm_otel").warning("llm_otel: local mode defaults not applied", exc_info=True)
