"""lmtailor: turn a domain's text into a small, fast, professional language model."""

__version__ = "0.1.0"
