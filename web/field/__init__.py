"""The field app: a grid worker's day on the tablet, offline, in the browser (`wangge field`)."""
from wangge.web.field.app import field_app

__all__ = ["field_app"]
