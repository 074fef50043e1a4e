"""The command-line layer: flag definitions, the training-record flags, log
set-up and the one-paragraph error printing of the entry scripts.

Only entry scripts (and tests) import this package; library code takes plain
arguments and typed configs instead of flags.
"""
