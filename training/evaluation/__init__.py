"""Evaluation of trained models: metrics on held-out data and preview images."""
