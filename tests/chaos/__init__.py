"""Soak tests: months of simulated customers through real workers, with faults on the way."""
