"""Helpers shared by test folders, importable as `support.<name>` (pytest pythonpath)."""
