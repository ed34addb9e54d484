"""Plots (matplotlib, imported lazily)."""
