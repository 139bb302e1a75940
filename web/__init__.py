"""The HTTP apps on Starlette: the sync endpoints, the office console, the field
app. Templates and static files live beside them and ship in the wheel, so an
office with no internet still gets every page.
"""
