"""Runs recorded by other tools, brought in: TensorBoard event files."""
