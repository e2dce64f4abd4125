"""Callbacks: one file each. A callback is any object with some of the event methods in `glassloop.core.events`."""

from glassloop.callbacks.checkpoint import Checkpoint
from glassloop.callbacks.console import Console
from glassloop.callbacks.early_stopping import EarlyStopping

__all__ = ["Checkpoint", "Console", "EarlyStopping"]
