"""Runs recorded by other tools, brought in as tuiexp runs.

- tensorboard: event files (`tuiexp import tb`), read with TensorBoard's own reader
"""
