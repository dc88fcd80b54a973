"""Optimizers written from the chapter's formulas."""
