"""collector-config.yaml and docker-compose.yaml: structure checks (docker cannot run here).

They catch what would make ``otelcol-contrib --config`` or ``docker compose up`` refuse the
files or silently lose data: pipelines naming undefined components, a missing
memory_limiter/batch, exporters without a persistent queue and retry, ports and
endpoints that do not line up between the two files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def collector():
    return yaml.safe_load((ROOT / "collector-config.yaml").read_text())


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def _kind(component_id: str) -> str:
    """``otlp/jaeger`` -> ``otlp``: the component type before the optional ``/name``."""
    return component_id.split("/", 1)[0]


def test_pipelines_reference_defined_components(collector):
    service = collector["service"]
    pipelines = service["pipelines"]
    assert pipelines, "no pipelines"
    for name, pipeline in pipelines.items():
        assert _kind(name) in ("traces", "metrics", "logs"), name
        assert pipeline.get("receivers") and pipeline.get("exporters"), name
        for section in ("receivers", "processors", "exporters"):
            for component in pipeline.get(section, []):
                assert component in (collector.get(section) or {}), f"{name}: {section} {component!r} undefined"
    for ext in service.get("extensions", []):
        assert ext in collector["extensions"], f"extension {ext!r} undefined"


def test_every_exporter_and_receiver_is_used(collector):
    used = {s: {c for p in collector["service"]["pipelines"].values() for c in p.get(s, [])}
            for s in ("receivers", "exporters")}
    assert set(collector["receivers"]) == used["receivers"]
    assert set(collector["exporters"]) == used["exporters"]


def test_otlp_receiver_on_standard_ports(collector):
    protocols = collector["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")


def test_processor_order_memory_limiter_first_batch_last(collector):
    for name, pipeline in collector["service"]["pipelines"].items():
        processors = pipeline["processors"]
        assert processors[0] == "memory_limiter", name
        assert _kind(processors[-1]) == "batch", name


def test_exports_to_jaeger_and_phoenix_without_losing_data(collector):
    exporters = collector["exporters"]
    storage = collector["extensions"]
    enabled = collector["service"]["extensions"]
    pushed = {name: cfg for name, cfg in exporters.items() if _kind(name) in ("otlp", "otlphttp")}
    targets = {name: cfg["endpoint"] for name, cfg in pushed.items()}
    assert any("jaeger" in e for e in targets.values()) and any("phoenix" in e for e in targets.values())
    traces_exporters = {e for name, p in collector["service"]["pipelines"].items()
                        if _kind(name) == "traces" for e in p["exporters"]}
    assert traces_exporters == set(pushed), "every trace backend gets the queued, retried exporters"
    for name, cfg in pushed.items():
        queue, retry = cfg["sending_queue"], cfg["retry_on_failure"]
        assert queue["enabled"] and retry["enabled"], name
        assert _kind(queue["storage"]) == "file_storage", f"{name}: in-memory queue loses data on restart"
        assert queue["storage"] in storage and queue["storage"] in enabled, name
        assert retry["max_elapsed_time"] == 0, f"{name}: retries give up during a long outage"


def test_knobs_are_defined_and_commented(collector):
    text = (ROOT / "collector-config.yaml").read_text()
    processors = collector["processors"]
    assert "probabilistic_sampler" in processors
    assert any(_kind(p) == "redaction" for p in processors)
    drops = [s for p, cfg in processors.items() if _kind(p) == "transform"
             for group in cfg["trace_statements"] for s in group["statements"]]
    for attr in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"):
        assert f'delete_key(attributes, "{attr}")' in drops
    for regex in processors["redaction/secrets"]["blocked_values"]:
        re.compile(regex)  # the Collector uses Go RE2; these patterns are valid in both
    assert text.count("KNOB") >= 3


def test_compose_brings_up_jaeger_phoenix_and_the_collector(compose):
    services = compose["services"]
    assert set(services) >= {"collector", "jaeger", "phoenix"}
    jaeger = services["jaeger"]
    assert "all-in-one" in jaeger["image"]
    assert str(jaeger["environment"]["COLLECTOR_OTLP_ENABLED"]).lower() == "true"
    assert "16686:16686" in jaeger["ports"]
    assert any(p.startswith("6006:") for p in services["phoenix"]["ports"])
    collector = services["collector"]
    assert "contrib" in collector["image"]  # file_storage, redaction, transform live there
    assert set(collector["depends_on"]) >= {"jaeger", "phoenix"}
    assert {"4317:4317", "4318:4318"} <= {p.split()[0] for p in collector["ports"]}


def test_compose_mounts_the_collector_config_and_its_queue(compose, collector):
    collector_svc = compose["services"]["collector"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in collector_svc["volumes"]}
    config_path = mounts["./collector-config.yaml"]
    assert any(arg.endswith(config_path) for arg in collector_svc["command"])
    queue_dir = collector["extensions"]["file_storage/queue"]["directory"]
    volume = next(src for src, dst in mounts.items() if dst == queue_dir)
    assert volume in compose["volumes"], "the queue must be on a named volume to survive restarts"
    # the Collector's exporters reach the other services by their compose names
    for name, cfg in collector["exporters"].items():
        host, port = cfg["endpoint"].rsplit(":", 1)
        if _kind(name) == "prometheus":  # served by the Collector itself: published
            assert f"{port}:{port}" in collector_svc["ports"]
        else:
            assert host in compose["services"], cfg["endpoint"]


def test_metrics_pipeline_serves_the_genai_metrics(collector):
    metrics = [p for name, p in collector["service"]["pipelines"].items() if _kind(name) == "metrics"]
    assert metrics and metrics[0]["receivers"] == ["otlp"]
