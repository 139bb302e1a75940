"""The runtime: grids, households, cases and the engines that execute a compiled ruleset."""
