"""Billing Admin's composition root: command line, settings, wiring."""

__version__ = "0.1.0"
