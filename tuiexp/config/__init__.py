"""experiments.toml: what the user declared, checked and expanded into run params."""
