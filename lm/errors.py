"""User-facing errors of the `lm` package.

Every problem a user can cause (bad prompt, bad knob, bad file, bad name) is raised as `LMError` with a
one-line message. The CLI prints that line and exits non-zero; the app shows it in an error box. Anything
else that escapes is a bug.
"""


class LMError(ValueError):
    """A problem with the user's input, stated in one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
