"""A byte-level server-sent-events decoder.

Lines end in CR, LF or CRLF, and a read may split anywhere: inside a CRLF, inside a UTF-8
character, inside a JSON string holding U+2028. Splitting bytes (never decoded text) on the
three terminators keeps every multi-byte character whole, and the data stays bytes for
orjson, which validates the UTF-8 itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

_BOM = b"\xef\xbb\xbf"


class SSEEvent(NamedTuple):
    event: str | None
    data: bytes


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events those bytes completed."""

    __slots__ = ("_buf", "_data", "_event", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []
        self._event: str | None = None
        self._skip_lf = False  # the last read ended in CR: a leading LF completes that CRLF
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._buf + chunk if self._buf else chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[3:]
        if b"\r" in buf:
            if buf.endswith(b"\r"):
                self._skip_lf = True
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            self._line(line, events)
        return events

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append(SSEEvent(self._event, b"\n".join(self._data)))
            self._data = []
            self._event = None
            return
        if line[:1] == b":":
            return  # a comment: keep-alive
        field, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            self._data.append(value)
        elif field == b"event":
            self._event = value.decode("utf-8", "replace")
        # "id" and "retry" are not used by any upstream we speak.


def decode_events(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Events from a sequence of reads; an unterminated last event is dropped, as the spec says."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
