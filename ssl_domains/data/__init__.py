"""Datasets from the registry, splits, label budgets and DataLoader building."""
