"""The one exception type of the library."""

from __future__ import annotations

from os import PathLike


class ScingestError(Exception):
    """Bad input or configuration, explained for the person who can fix it.

    The message names the file (and line and column where they apply) and what was expected.
    The workflow lets it end the job with this message and no traceback noise.

    Parameters
    ----------
    message
        What is wrong and what was expected.
    path
        The file (or sheet, folder, "sheet.tsv, line 3") at fault, shown first.
    line
        Its line, shown after the path.
    column
        Its column, shown after the line.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | PathLike[str] | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.column = column
        where = ""
        if self.path is not None:
            where = self.path
            if line is not None:
                where += f", line {line}"
            if column is not None:
                where += f", column {column}"
            where += ": "
        super().__init__(where + message)
