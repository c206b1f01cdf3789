"""User-facing errors of the `lm` package.

Every problem a user can cause (bad prompt, bad knob, bad file, bad name) is raised as `LMError` with a
one-line message. The CLI prints that line and exits non-zero; the app shows it in an error box. Anything
else that escapes is a bug.

A message is English with named placeholders and its values beside it,
`LMError("the file has only {chars} characters", chars=n)`: `exc.args[0]` is the English line, `str(exc)` the
line in the current language (`lm.i18n`), worked out when it is shown — so an error raised in one thread or
process reads in the language of whoever shows it. tools/i18n.py puts the messages of the modules whose errors
reach the pages into the catalog.
"""

from lm.i18n import render


class LMError(ValueError):
    """A problem with the user's input, stated in one line."""

    def __init__(self, message: str, **fields):
        self.message, self.fields = str(message), fields
        super().__init__(_line(self.message.format(**fields) if fields else self.message))

    def __str__(self) -> str:
        return _line(render(self.message, self.fields))

    def __reduce__(self):  # pickled (a worker process): the message and its values, not the English line
        return _rebuild, (type(self), self.message, self.fields)


def _line(text: str) -> str:
    return " ".join(text.split())


def _rebuild(cls, message: str, fields: dict) -> LMError:
    return cls(message, **fields)
