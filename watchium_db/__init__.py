"""watchium-db: the database half of a realtime watch-party platform."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
