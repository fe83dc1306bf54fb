"""The version of tinylstm (a leaf: the C banner and the CLI read it without the package facade)."""

__version__ = "0.1.0"
