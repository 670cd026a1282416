"""``python -m llm_otel.cli``."""

import sys

from llm_otel.cli.main import main

sys.exit(main())
