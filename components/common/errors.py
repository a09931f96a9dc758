"""Errors that reach the user as one line."""


class ReprflowError(Exception):
    """A problem with the user's input or configuration, worded for the user."""


class DataError(ReprflowError):
    """The input data cannot be used: names the file, the column and an offending value."""


class ConfigError(ReprflowError):
    """The run configuration is invalid: names the file, the field and the value."""
