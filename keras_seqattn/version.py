"""The package version, in one place: setuptools reads it from here when it builds."""

__version__ = "0.1.0"
