"""JSON logs on stdout, one object per line, with personal data redacted as a last line of defence.

Code must never log personal data in the first place; the redaction filter only makes sure an
ID number or a mobile number that slips into a message is masked before it is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

from .tracing import current_trace_id

# one line per RPC and per applied event, with its trace id (ACCESS_LOG=true): how a request is
# followed across services
access_log = logging.getLogger("wenming.access")

_ID_NUMBER = re.compile(r"(?<![0-9])([1-9][0-9]{5})(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9])")
_MOBILE = re.compile(r"(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])")


def redact(text: str) -> str:
    """Masks anything shaped like a resident ID number or a mainland mobile number."""
    text = _ID_NUMBER.sub(lambda m: m.group(0)[:3] + "*" * 11 + m.group(0)[-4:], text)
    return _MOBILE.sub(r"\1****\2", text)


class JsonFormatter(logging.Formatter):
    _STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        trace_id = current_trace_id()
        if trace_id:
            entry["trace_id"] = trace_id
        for key, value in record.__dict__.items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(service: str, level: str = "INFO", access: bool = False) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # the Kafka client and waitress are chatty at INFO; their warnings still come through
    for noisy in ("kafka", "waitress", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    access_log.disabled = not access
