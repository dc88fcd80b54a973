"""repro: re-run the claims of a lecture chapter on deep networks and say which hold."""

__version__ = "0.1.0"
