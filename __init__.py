"""wangge: offline-first sync and a rules language for community grid management.

This file stays free of imports: pytest may import the repository root under
its folder name as well as under ``wangge``, and importing the table modules
twice would define every SQLModel table twice.
"""
