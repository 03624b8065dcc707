"""Structured JSON logs with the request id and method bound per call, secrets redacted."""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.processors import ExceptionRenderer
from structlog.tracebacks import ExceptionDictTransformer

from services.common.redaction import redact_event, redact_text
from services.common.tracing import add_trace_ids

# No local variables in tracebacks: a frame's locals hold requests, passwords and tokens,
# and a traceback is written exactly when input was unexpected. Frames and messages stay.
_tracebacks = ExceptionRenderer(ExceptionDictTransformer(show_locals=False, use_rich=False))


class _RedactingFormatter(logging.Formatter):
    """Formats records of the standard library's loggers (grpc, asyncio) with secrets masked."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record, tracebacks included, with token-like values replaced."""
        return redact_text(super().format(record))


class _Stderr:
    """Whatever `sys.stderr` is when a line is written, not when a logger was first used.

    Loggers are cached on first use; one that kept the stream of that moment would write to
    a closed file once it was swapped (pytest's capture swaps it per test).
    """

    def write(self, text: str) -> int:
        """Write to the current stderr."""
        return sys.stderr.write(text)

    def flush(self) -> None:
        """Flush the current stderr."""
        sys.stderr.flush()


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send JSON log lines to stderr, one object per event, never carrying a secret."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("%(name)s %(levelname)s %(message)s"))
    logging.basicConfig(handlers=[handler], level=level.upper(), force=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _tracebacks,
            # Last before rendering, so it also sees the rendered traceback.
            redact_event,
            structlog.processors.EventRenamer("msg"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(_Stderr()),  # type: ignore[arg-type]  # duck-typed file
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
