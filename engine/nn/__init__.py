"""Shared layers used by several families."""
