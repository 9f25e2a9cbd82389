"""The exceptions a user can cause, so the CLI can show them as one clear line instead of a traceback.

Every message names the input, what was wrong with it, and what to do about it.
"""


class LmtailorError(Exception):
    """Base class: an error caused by the user's input or configuration, not a bug."""


class InputNotFoundError(LmtailorError):
    """A path the user gave does not exist."""


class EmptyInputError(LmtailorError):
    """An input exists but yields nothing to work with (no documents, no text, no terms)."""


class InputFormatError(LmtailorError):
    """An input is in a format lmtailor cannot read (malformed line, wrong encoding, unknown field)."""


class ConfigError(LmtailorError):
    """A configuration value is invalid or impossible (e.g. a vocabulary too small for its alphabet)."""


class OutputExistsError(LmtailorError):
    """The output folder exists and overwriting was not allowed, or it is not an lmtailor output to overwrite."""


class OutputPathError(LmtailorError):
    """An output path cannot be used: it is or contains an input, or lies under a file."""


class OutputWriteError(LmtailorError):
    """Writing failed at the operating system (disk full, read-only file system, no permission); nothing was kept."""


class VerificationError(LmtailorError):
    """A stage's result failed its own check against its input (e.g. ONNX vs PyTorch parity); nothing was written."""
