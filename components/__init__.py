"""Reusable Pulumi component resources for the ML platform (importable by other stacks)."""
