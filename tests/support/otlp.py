"""Small real OTLP receivers on 127.0.0.1 for subprocess tests: HTTP/protobuf and gRPC.

Each decodes the export requests with opentelemetry-proto (what a Collector does) and keeps
what arrived: spans (name, attributes, resource attributes), metric names, log bodies.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def _attributes(key_values: Any) -> Dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


@dataclass
class Received:
    """What the receiver decoded, in arrival order."""

    spans: List[Dict[str, Any]] = field(default_factory=list)
    metric_names: List[str] = field(default_factory=list)
    log_bodies: List[Any] = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_traces(self, request: Any) -> None:
        with self.lock:
            self.requests += 1
            for rs in request.resource_spans:
                resource = _attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        self.spans.append({"name": span.name, "kind": span.kind, "scope": ss.scope.name,
                                           "attributes": _attributes(span.attributes), "resource": resource})

    def add_metrics(self, request: Any) -> None:
        with self.lock:
            self.requests += 1
            self.metric_names += [m.name for rm in request.resource_metrics for sm in rm.scope_metrics
                                  for m in sm.metrics]

    def add_logs(self, request: Any) -> None:
        with self.lock:
            self.requests += 1
            self.log_bodies += [_value(r.body) for rl in request.resource_logs for sl in rl.scope_logs
                                for r in sl.log_records]


_HTTP_PATHS = {
    "/v1/traces": (trace_pb.ExportTraceServiceRequest, trace_pb.ExportTraceServiceResponse, "add_traces"),
    "/v1/metrics": (metrics_pb.ExportMetricsServiceRequest, metrics_pb.ExportMetricsServiceResponse, "add_metrics"),
    "/v1/logs": (logs_pb.ExportLogsServiceRequest, logs_pb.ExportLogsServiceResponse, "add_logs"),
}


@contextlib.contextmanager
def http_receiver() -> Iterator[tuple]:
    """An OTLP/HTTP (protobuf) receiver; yields (endpoint URL, Received)."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.path not in _HTTP_PATHS:
                self.send_error(404)
                return
            request_type, response_type, add = _HTTP_PATHS[self.path]
            request = request_type()
            request.ParseFromString(body)
            getattr(received, add)(request)
            reply = response_type().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def grpc_receiver() -> Iterator[tuple]:
    """An OTLP/gRPC receiver; yields (endpoint URL, Received), filled when the block ends.

    The server runs in a process of its own, as a Collector does: in the test process, gRPC's
    fork handlers would run in every child that ``subprocess`` forks on Python 3.9 and, under
    load, abort it before its exec (grpcio 1.80, epoll_wait: Bad file descriptor).
    """
    server = subprocess.Popen([sys.executable, __file__, "grpc"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    received = Received()
    try:
        yield server.stdout.readline().strip(), received
    finally:
        out, _ = server.communicate("", timeout=60)  # end of input: the server stops and reports
        if server.returncode != 0 or not out.strip():
            raise RuntimeError(f"the OTLP/gRPC receiver process failed (exit {server.returncode})")
        for name, value in json.loads(out).items():
            setattr(received, name, value)


def _serve_grpc() -> None:
    """Serve OTLP/gRPC on a free port: print the endpoint, then, at the end of input, what arrived."""
    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_grpc
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc

    received = Received()

    class Traces(trace_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC's naming
            received.add_traces(request)
            return trace_pb.ExportTraceServiceResponse()

    class Metrics(metrics_grpc.MetricsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
            received.add_metrics(request)
            return metrics_pb.ExportMetricsServiceResponse()

    class Logs(logs_grpc.LogsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
            received.add_logs(request)
            return logs_pb.ExportLogsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    logs_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"http://127.0.0.1:{port}", flush=True)
    sys.stdin.read()
    server.stop(grace=None)
    with received.lock:
        print(json.dumps({"spans": received.spans, "metric_names": received.metric_names,
                          "log_bodies": received.log_bodies, "requests": received.requests}, default=str))


if __name__ == "__main__" and sys.argv[1:] == ["grpc"]:
    _serve_grpc()
