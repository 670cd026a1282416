"""Provisional (replaced by the secrets work): credential masking by name."""

from __future__ import annotations

import re

from llm_otel.core.content import scrub_secrets

__all__ = ["is_secret_name", "scrub_secrets"]

_NAME = re.compile(r"(?i)^(?:x[-_])?(?:api[-_]?key|apikey|password|passwd|secret|client[-_]?secret|token|"
                   r"access[-_]?token|refresh[-_]?token|authorization|auth|private[-_]?key|credentials?)$")


def is_secret_name(name: str) -> bool:
    return bool(_NAME.match(name))
