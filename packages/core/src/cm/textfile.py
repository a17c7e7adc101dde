"""Reading the text files users hand to cm (experiments, posts, checkpoints' metadata): a
missing, unreadable, binary or non-UTF-8 file is one ``UserError`` naming the file and the
fix, never a traceback. CSV is read strictly (a quoting error is an error naming the file
and line, never rows merged); its fields may be as long as the longest post."""

import csv
import io
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cm.errors import UserError


def read_text(path, what="file") -> str:
    """The file's text as UTF-8 (a leading byte-order mark is dropped)."""
    with opened(path, what) as handle:
        return decode_utf8(path, handle.read(), what)


def text_lines(path, what="file") -> Iterator[str]:
    """The file's lines (each with its ending) as UTF-8, read one at a time: memory holds one
    line, however long the file. A bad byte is a UserError naming the line it is on."""
    with opened(path, what) as handle:
        for number, data in enumerate(handle, 1):
            yield decode_utf8(path, data, what, number)


@contextmanager
def opened(path, what):
    path = Path(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory; pass the {what} itself") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read this {what} ({exc.strerror}); check the path "
                        "and its permissions") from None
    with handle:
        yield handle


def decode_utf8(path, data: bytes, what="file", first_line=1) -> str:
    """``data`` (the file from line ``first_line`` on) as UTF-8, a leading byte-order mark
    dropped; a NUL byte or a byte that is not UTF-8 is a UserError naming the file and the
    line it is on."""
    if b"\0" in data:
        line = first_line + data[:data.index(b"\0")].count(b"\n")
        raise UserError(f"{path} (line {line}): a binary file; the {what} must be UTF-8 text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = first_line + data[:exc.start].count(b"\n")
        raise UserError(f"{path} (line {line}, byte {exc.start}): not UTF-8 (byte "
                        f"0x{data[exc.start]:02x}); re-save the {what} as UTF-8") from None


def lift_csv_field_limit() -> None:
    """Python's csv module refuses fields over 131,072 characters; posts can be longer."""
    csv.field_size_limit(sys.maxsize)


def csv_records(path, text: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """Each record of a CSV text (the header first; blank lines skipped) with the line it
    starts on. ``text`` comes in pieces cut at line ends (``[whole_text]``, or
    ``text_lines``), read as they come. Strict: a quote that never closes, which a lenient
    reader would let swallow every following row into one field, or text after a closing
    quote is a UserError naming the file and the record's first line."""
    lift_csv_field_limit()
    lines = (line for piece in text for line in io.StringIO(piece, newline=""))
    reader = csv.reader(lines, strict=True)
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UserError(f"{path} (line {line}): unreadable CSV ({exc}); check the quotes of "
                            "the row starting there: a field holding quotes, commas or line "
                            'breaks must be wrapped in quotes, with its own quotes doubled ("")'
                            ) from None
        if fields:
            yield line, fields
