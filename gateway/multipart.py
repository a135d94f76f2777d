"""Multipart request bodies parsed as they stream in (python-multipart's parser fed from
``request.stream()``): each file part goes straight into a new temporary blob of the store,
hashed and counted on the way (storage/blobs/writer.py), so its bytes reach the disk once and
the use cases take the file as it is (``ReceivedFile``) instead of copying it again.

Every limit holds while the body arrives, with the messages of Starlette's parser (which the
view maps to statuses): at most ``max_files`` file parts and ``max_fields`` text parts, text
parts up to ``max_text_part_bytes``, and a file part over ``max_file_bytes`` (the largest
file any upload takes) is refused as soon as it passes it, its temporary blob removed. A
file part whose writing fails (a full disk) is read to its end without being written and
arrives as the error, raised where an operation uses it.

The parsed form lives in the request's scope until the response ends; :func:`close_form`
then removes its temporary blobs (each use case only discards the blobs it made itself).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import python_multipart
from cross_web import FormData, StarletteRequestAdapter
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartState, parse_options_header
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Scope

from storage.blobs import BlobStore, TempWriter
from storage.errors import FileRejected, format_size
from storage.receiving import ReceivedFile

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FORM = "media_gateway.multipart"
"""The scope key of the request's ``StreamedForm``."""


@dataclass(frozen=True)
class MultipartLimits:
    max_files: int
    max_fields: int
    max_text_part_bytes: int
    max_file_bytes: int


@dataclass
class StreamedForm:
    """The parts of one multipart body by name (the last of a name wins, as in Starlette's
    ``FormData``): text parts as ``str``, file parts as ``ReceivedFile``."""

    values: dict[str, str | ReceivedFile] = field(default_factory=dict)
    writers: list[TempWriter] = field(default_factory=list)

    def close(self) -> None:
        """Remove every temporary blob of the form (synchronous: no cancellation stops it)."""
        for writer in self.writers:
            writer.discard()


@dataclass
class _Part:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    name: str = ""
    text: bytearray = field(default_factory=bytearray)
    writer: TempWriter | None = None
    error: OSError | None = None


class _Receiver:
    """python-multipart's callbacks (synchronous) note what a chunk held; after each chunk
    :meth:`settle` writes the file data and finishes the file parts it ended."""

    def __init__(
        self, blobs: BlobStore, limits: MultipartLimits, charset: str, form: StreamedForm
    ) -> None:
        self.blobs = blobs
        self.limits = limits
        self.charset = charset
        self.form = form
        self.files = 0
        self.fields = 0
        self.part = _Part()
        self.header_name = b""
        self.header_value = b""
        self.to_write: list[tuple[_Part, bytes]] = []
        self.to_finish: list[_Part] = []

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers.append((self.header_name.lower(), self.header_value))
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        disposition = next((v for k, v in self.part.headers if k == b"content-disposition"), b"")
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise MultiPartException(
                'The Content-Disposition header field "name" must be provided.'
            )
        self.part.name = _decoded(options[b"name"], self.charset)
        if b"filename" in options:
            self.files += 1
            if self.files > self.limits.max_files:
                raise MultiPartException(
                    f"Too many files. Maximum number of files is {self.limits.max_files}."
                )
            self.part.writer = self.blobs.new_temporary(limit=self.limits.max_file_bytes)
            self.form.writers.append(self.part.writer)
        else:
            self.fields += 1
            if self.fields > self.limits.max_fields:
                raise MultiPartException(
                    f"Too many fields. Maximum number of fields is {self.limits.max_fields}."
                )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        if part.writer is not None:
            self.to_write.append((part, data[start:end]))
            return
        if len(part.text) + end - start > self.limits.max_text_part_bytes:
            raise MultiPartException(
                "Part exceeded maximum size of "
                f"{format_size(self.limits.max_text_part_bytes)} for a text part."
            )
        part.text += data[start:end]

    def on_part_end(self) -> None:
        if self.part.writer is None:
            self.form.values[self.part.name] = _decoded(self.part.text, self.charset)
        else:
            self.to_finish.append(self.part)

    async def settle(self) -> None:
        for part, data in self.to_write:
            await self._write(part, data)
        for part in self.to_finish:
            self.form.values[part.name] = await _finished(part)
        self.to_write.clear()
        self.to_finish.clear()

    async def _write(self, part: _Part, data: bytes) -> None:
        if part.error is not None or part.writer is None:
            return
        try:
            await part.writer.write(data)
        except FileRejected:
            part.writer.discard()
            raise MultiPartException(
                f"Part exceeded the limit of {format_size(self.limits.max_file_bytes)} "
                "of the largest file an upload takes."
            ) from None
        except OSError as error:
            part.error = error
            part.writer.discard()


async def _finished(part: _Part) -> ReceivedFile:
    if part.error is None and part.writer is not None:
        try:
            return ReceivedFile(await part.writer.finish())
        except OSError as error:
            part.error = error
            part.writer.discard()
    return ReceivedFile(None, part.error)


def _decoded(raw: bytes | bytearray, charset: str) -> str:
    try:
        return raw.decode(charset)
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _charset(params: dict[bytes, bytes]) -> str:
    try:
        return codecs.lookup(params.get(b"charset", b"utf-8").decode("latin-1")).name
    except LookupError:
        return "latin-1"


async def receive_form(request: Request, blobs: BlobStore, limits: MultipartLimits) -> None:
    """Parse the multipart body of ``request`` into a ``StreamedForm`` in its scope, or
    raise (``MultiPartException`` for a malformed or over-limit body, or whatever reading
    the body raised) with every temporary blob of it removed."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    if b"boundary" not in params:
        raise MultiPartException("Missing boundary in multipart.")
    form = StreamedForm()
    receiver = _Receiver(blobs, limits, _charset(params), form)
    try:
        parser = python_multipart.MultipartParser(params[b"boundary"], receiver.callbacks())
        async for chunk in request.stream():
            parser.write(chunk)
            await receiver.settle()
        parser.finalize()
        if parser.state != MultipartState.END:
            raise MultiPartException("Invalid multipart data: the body ended inside a part.")
    except BaseException as exc:
        form.close()
        if isinstance(exc, FormParserError):
            raise MultiPartException("Invalid multipart data.") from exc
        raise
    request.scope[FORM] = form


def close_form(scope: Scope) -> None:
    """Remove the temporary blobs of the request's form, if it had one."""
    form: StreamedForm | None = scope.pop(FORM, None)
    if form is not None:
        form.close()


class StreamedFormAdapter(StarletteRequestAdapter):
    """Strawberry's Starlette request adapter, handing Strawberry's multipart handling (the
    ``operations`` and ``map`` fields, files put into the variables) the streamed form."""

    def __init__(self, request: Request) -> None:
        super().__init__(request)
        self.scope = request.scope

    async def get_form_data(self) -> FormData:
        form: StreamedForm | None = self.scope.get(FORM)
        if form is None:
            raise ValueError("The multipart body was not received.")  # Strawberry: a 400
        return FormData(files=form.values, form=form.values)


__all__ = [
    "FORM",
    "MultipartLimits",
    "StreamedForm",
    "StreamedFormAdapter",
    "close_form",
    "receive_form",
]
