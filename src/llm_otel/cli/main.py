"""``llm-otel``: local tools over recorded traces (``tree``, ``finetune``) and ``doctor``.

Exit codes (the same for every subcommand):

==  =====================================================================================
0   success
1   ``doctor`` found a problem (an exporter that cannot load, an OTLP endpoint that does
    not answer, no token encoding offline)
2   usage error (bad arguments; argparse's own code)
3   input or output file cannot be read or written (missing, a directory, no permission,
    a full disk); a failed output leaves no file behind, not even a temporary one
4   bad input: lines that are not JSON or not spans (each reported as ``file:line: what
    is wrong`` on stderr); ``--ignore-bad-lines`` reports them, counts them and carries on
    with the rest, unless no line at all is a span
5   no data: the input holds no spans (empty file), the trace id is not in it, or the
    fine-tuning export has no example left to write
70  internal error (a bug: please report it with the traceback)
==  =====================================================================================
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import List, Optional, Sequence, TextIO

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_IO = 3
EXIT_BAD_INPUT = 4
EXIT_NO_DATA = 5
EXIT_INTERNAL = 70


class CliError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _read(path: str, include_backups: bool, ignore_bad: bool, err: TextIO) -> list:
    """The spans of a JSONL trace file; bad lines reported, and fatal unless ignored."""
    from llm_otel.exporters.jsonl import JsonlReader

    reader = JsonlReader(path, include_backups=include_backups)
    try:
        spans = list(reader)
    except IsADirectoryError:
        raise CliError(EXIT_IO, f"{path}: is a directory") from None
    except OSError as exc:
        raise CliError(EXIT_IO, f"{path}: cannot read: {exc.strerror or exc}") from None
    bad, lines = len(reader.bad_lines), reader.line_count
    for line in reader.bad_lines[:50]:
        print(f"llm-otel: {line}", file=err)
    if bad > 50:
        print(f"llm-otel: ... {bad - 50} more bad lines", file=err)
    if bad and not ignore_bad:
        raise CliError(EXIT_BAD_INPUT, f"{path}: {bad} bad line(s) of {lines} "
                                       "(use --ignore-bad-lines to read the rest)")
    if bad and not spans:
        raise CliError(EXIT_BAD_INPUT, f"{path}: {bad} bad line(s) of {lines}, and not one span")
    if bad:
        print(f"llm-otel: {path}: skipped {bad} bad line(s) of {lines}", file=err)
    if not spans:
        raise CliError(EXIT_NO_DATA, f"{path}: no spans in the file")
    return spans


# ---- tree -------------------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def cmd_tree(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from llm_otel.exporters.console import group_traces, render_trace, use_color

    spans = _read(args.file, args.include_backups, args.ignore_bad_lines, err)
    traces = group_traces(spans)
    if args.trace_id:
        wanted = args.trace_id.lower()
        traces = [t for t in traces if t[0].trace_id == wanted]
        if not traces:
            raise CliError(EXIT_NO_DATA, f"trace {args.trace_id} not found in {args.file}")
    if args.last is not None:
        traces = traces[-args.last:]
    color = args.color if args.color is not None else use_color(out)
    for i, trace in enumerate(traces):
        if i:
            out.write("\n")
        has_root = any(s.is_local_root for s in trace)  # else the root is in another (rotated) file
        out.write(render_trace(trace, color=color, incomplete=not has_root, summary=not args.no_summary))
    if args.summary_all and len(traces) > 1:
        from llm_otel.exporters.console import render_summary

        out.write(f"\nall {len(traces)} traces\n")
        out.write("\n".join(render_summary([s for t in traces for s in t])) + "\n")
    return EXIT_OK


# ---- finetune ---------------------------------------------------------------------------------


def _feedback(text: str) -> tuple:
    name, _, value = text.rpartition("=")
    try:
        return (name or None), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected [NAME=]NUMBER, got {text!r}") from None


def _when(text: str):
    from llm_otel.finetune.export import parse_when

    try:
        return parse_when(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or date-time: {text!r}") from None


def _cannot_write(path: str, exc: OSError) -> CliError:
    return CliError(EXIT_IO, f"{path}: cannot write: {exc.strerror or exc}")


def cmd_finetune(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Build the examples, write them, and only then report what was written."""
    from llm_otel.finetune.export import Filters, atomic_write, build_examples, example_line, write_examples

    spans = _read(args.file, args.include_backups, args.ignore_bad_lines, err)
    feedback_name, min_feedback = args.min_feedback if args.min_feedback else (None, None)
    filters = Filters(model=args.model, tag=args.tag, feedback_name=feedback_name, min_feedback=min_feedback,
                      since=args.since, until=args.until)
    examples, report = build_examples(spans, filters)
    failure: Optional[CliError] = None
    if examples:
        try:
            if args.output == "-":
                for example in examples:
                    out.write(example_line(example).decode("utf-8"))
                out.flush()
            else:
                write_examples(examples, args.output)
            report.written = len(examples)
        except BrokenPipeError:  # `llm-otel finetune f -o - | head`: the reader has what it wanted
            raise
        except OSError as exc:
            failure = _cannot_write(args.output, exc)
    print(report.text(max_details=args.details), file=err)
    if args.report_json:
        try:
            atomic_write(args.report_json, [json.dumps(report.as_dict(), indent=2).encode("utf-8") + b"\n"])
        except OSError as exc:
            failure = failure or _cannot_write(args.report_json, exc)
    if failure is not None:
        raise failure
    if not examples:
        raise CliError(EXIT_NO_DATA, "no example to write (see the report above)")
    if args.output != "-":
        print(f"wrote {len(examples)} examples to {args.output}", file=err)
    return EXIT_OK


# ---- doctor -----------------------------------------------------------------------------------

_MARKS = {"ok": "ok     ", "info": "       ", "warn": "warn   ", "problem": "PROBLEM"}


def cmd_doctor(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from llm_otel.cli.doctor import run_checks
    from llm_otel.version import __version__

    sections = run_checks(timeout=args.timeout)
    problems = sum(1 for rows in sections.values() for status, _, _ in rows if status == "problem")
    if args.json:
        json.dump({"version": __version__, "problems": problems,
                   "checks": {title: [{"status": s, "subject": n, "detail": d} for s, n, d in rows]
                              for title, rows in sections.items()}}, out, indent=2)
        out.write("\n")
    else:
        out.write(f"llm-otel {__version__} (python {sys.version.split()[0]})\n")
        for title, rows in sections.items():
            out.write(f"\n[{title}]\n")
            width = max(len(name) for _, name, _ in rows)
            for status, name, detail in rows:
                out.write(f"  {_MARKS.get(status, status)}  {name.ljust(width)}  {detail}\n")
        out.write(f"\n{problems} problem{'s' if problems != 1 else ''} found\n")
    return EXIT_PROBLEMS if problems else EXIT_OK


# ---- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-otel", description="Local tools for llm-otel traces.",
        epilog="exit codes: 0 ok, 1 doctor found problems, 2 usage, 3 file I/O, 4 bad input lines, "
               "5 no data, 70 internal error")
    from llm_otel.version import __version__

    parser.add_argument("--version", action="version", version=f"llm-otel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def input_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("file", help="JSONL trace file written by OTEL_TRACES_EXPORTER=llm_otel_jsonl")
        p.add_argument("--include-backups", action="store_true",
                       help="also read the rotated files FILE.1, FILE.2, ... (oldest first)")
        p.add_argument("--ignore-bad-lines", action="store_true",
                       help="report lines that are not spans and go on (default: exit 4)")

    tree = sub.add_parser("tree", help="print traces from a JSONL trace file as trees",
                          description="Print each trace of a JSONL trace file as a tree: duration, status, "
                                      "model, tokens (~ = estimated) and cost per step, totals per trace "
                                      "and a per-operation summary.")
    input_options(tree)
    tree.add_argument("--trace-id", help="only this trace (32 hex digits)")
    tree.add_argument("--last", type=_positive, metavar="N", help="only the N most recent traces (N >= 1)")
    tree.add_argument("--no-summary", action="store_true", help="leave out the per-operation summaries")
    tree.add_argument("--summary-all", action="store_true", help="add one summary over all printed traces")
    colour = tree.add_mutually_exclusive_group()
    colour.add_argument("--color", dest="color", action="store_true", default=None, help="always colour")
    colour.add_argument("--no-color", dest="color", action="store_false", help="never colour")
    tree.set_defaults(func=cmd_tree)

    ft = sub.add_parser("finetune", help="export recorded chat calls as OpenAI fine-tuning JSONL",
                        description="Turn the chat calls recorded in a JSONL trace file (content capture on) "
                                    "into OpenAI chat fine-tuning JSONL ({\"messages\": [...], \"tools\": "
                                    "[...]}). Each example is validated; duplicates are written once; the "
                                    "report of skipped calls goes to stderr.")
    input_options(ft)
    ft.add_argument("-o", "--output", required=True, help="fine-tuning JSONL to write ('-' for stdout)")
    ft.add_argument("--model", help="only calls to models matching this glob (e.g. 'gpt-4o*')")
    ft.add_argument("--tag", help="only calls whose span or trace root carries this llm_otel.tags value")
    ft.add_argument("--min-feedback", type=_feedback, metavar="[NAME=]SCORE",
                    help="only traces with feedback (named NAME, or any) of at least SCORE")
    ft.add_argument("--since", type=_when, help="only calls started at or after this ISO date/time (UTC)")
    ft.add_argument("--until", type=_when, help="only calls started before this ISO date/time (UTC)")
    ft.add_argument("--report-json", metavar="PATH", help="also write the report as JSON")
    ft.add_argument("--details", type=int, default=20, metavar="N", help="skipped calls listed in the report")
    ft.set_defaults(func=cmd_finetune)

    doctor = sub.add_parser("doctor", help="check instrumentation, OpenTelemetry configuration and tokens",
                            description="Which instrumentable libraries are installed and which instrumentors "
                                        "would be active, the OTel SDK and exporter configuration from the "
                                        "environment, whether the OTLP endpoint answers, whether tiktoken "
                                        "encodings are available offline. Exit 1 when a problem is found.")
    doctor.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the OTLP endpoint")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=cmd_doctor)
    return parser


def main(argv: Optional[Sequence[str]] = None, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        return args.func(args, out, err)
    except CliError as exc:
        print(f"llm-otel {args.command}: error: {exc}", file=err)
        return exc.code
    except BrokenPipeError:  # `llm-otel tree f | head`
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception:  # noqa: BLE001 - a bug: say so, with the traceback
        print(f"llm-otel {args.command}: internal error, please report:\n{traceback.format_exc()}", file=err)
        return EXIT_INTERNAL


def run(argv: Optional[List[str]] = None) -> None:
    sys.exit(main(argv))
