"""Tiering rules, one module per dimension, all evaluated column-wise over a batch.

Each rule reads ``Columns`` already cleaned by ``quality`` and returns its level per row
plus the ``ReasonColumn``s that explain it; ``engine`` runs them in dependency order
(quality, value, needs, credit, aml, ops, feedback) and ``strategy`` turns one customer's
results into CRM actions.
"""
