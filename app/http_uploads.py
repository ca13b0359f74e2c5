"""Multipart uploads received as a stream: file parts go to disk as they arrive and the upload is
cut off at the limit, so a 5 GB body costs neither memory nor more than the limit of disk.

Starlette's `request.form()` would spool every part whole before anyone could look at its size;
the client API's media endpoints and the web compose form read their bodies through here instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from app.services.errors import Invalid

MAX_TEXT_FIELD = 64 * 1024
MAX_PARTS = 64


class UploadTooLarge(Invalid):
    """The body went over the limit; what had arrived is deleted."""


@dataclass
class UploadedFile:
    field: str
    filename: str
    declared_type: str
    path: Path
    size: int = 0


@dataclass
class ReceivedForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)

    def first(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def discard(self) -> None:
        """Delete files nobody took over (a refused upload leaves nothing behind)."""
        for upload in self.files:
            with contextlib.suppress(OSError):
                upload.path.unlink(missing_ok=True)


class _Receiver:
    def __init__(self, directory: Path, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        self.form = ReceivedForm()
        self.total_file_bytes = 0
        self._headers: dict[str, str] = {}
        self._header_field = b""
        self._header_value = b""
        self._name = ""
        self._file: UploadedFile | None = None
        self._handle: IO[bytes] | None = None
        self._text = bytearray()
        self.error: Invalid | None = None

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self._headers = {}
        self._file = None
        self._handle = None
        self._text = bytearray()
        if len(self.form.files) + sum(len(v) for v in self.form.fields.values()) >= MAX_PARTS:
            raise Invalid("the form has too many parts")

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = self._header_value.decode("latin-1")
        self._header_field = b""
        self._header_value = b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is not None:
            # The name is kept only to be shown; the file on disk is named by us.
            path = self.directory / f"upload-{secrets.token_hex(16)}"
            self._file = UploadedFile(
                field=self._name,
                filename=filename.decode("utf-8", "replace")[:255],
                declared_type=self._headers.get("content-type", "")[:128],
                path=path,
            )
            self.form.files.append(self._file)
            self._handle = path.open("wb")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._file is not None and self._handle is not None:
            self.total_file_bytes += len(chunk)
            self._file.size += len(chunk)
            if self.total_file_bytes > self.limit:
                raise UploadTooLarge(
                    f"the upload is larger than the limit of {self.limit // (1024 * 1024)} MB"
                )
            self._handle.write(chunk)
            return
        self._text += chunk
        if len(self._text) > MAX_TEXT_FIELD:
            raise Invalid(f"the form field {self._name!r} is too long")

    def part_end(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            if self._file is not None and self._file.size == 0 and not self._file.filename:
                # A file input left empty: browsers send a part without a name or bytes.
                self._file.path.unlink(missing_ok=True)
                self.form.files.remove(self._file)
            return
        self.form.fields.setdefault(self._name, []).append(self._text.decode("utf-8", "replace"))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


async def receive_multipart(request: Request, directory: Path, limit: int) -> ReceivedForm:
    """Read a multipart/form-data body: text fields in memory, files on disk in `directory`.
    Raises UploadTooLarge (and deletes what arrived) as soon as the files pass `limit` bytes."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise Invalid("the upload must be sent as multipart/form-data")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 1024 * 1024:
        raise UploadTooLarge(f"the upload is larger than the limit of {limit // (1024 * 1024)} MB")
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    receiver = _Receiver(directory, limit)
    parser = MultipartParser(boundary, receiver.callbacks())
    try:
        async for chunk in request.stream():
            # Writing to disk is blocking: each chunk's share is done in a thread.
            await asyncio.to_thread(parser.write, chunk)
        await asyncio.to_thread(parser.finalize)
    except Invalid:
        receiver.close()
        receiver.form.discard()
        raise
    except Exception:
        receiver.close()
        receiver.form.discard()
        raise Invalid("the upload is not a well-formed multipart form") from None
    receiver.close()
    return receiver.form


__all__ = ["ReceivedForm", "UploadTooLarge", "UploadedFile", "receive_multipart"]
