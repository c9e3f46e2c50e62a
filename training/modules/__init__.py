"""LightningModules, one module per model family (import them by their full path)."""
