"""Evaluation helpers: bootstrap confidence intervals and the lm-eval model adapter."""
