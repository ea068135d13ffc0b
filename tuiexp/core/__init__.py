"""The headless core: config, run store, index, queue, daemon. Never imports torch or textual."""
