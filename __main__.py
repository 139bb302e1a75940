"""`python -m wangge` runs the command line."""
from wangge.cli import main

main()
