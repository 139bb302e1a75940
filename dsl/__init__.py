"""The rules language: grammar, parser, semantic checks and the compiler to a Ruleset."""
