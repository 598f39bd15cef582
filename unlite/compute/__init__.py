"""Compute drivers (paper Table II). ``native`` runs NNFs in network namespaces."""
