"""Tiering rules, one module per dimension.

Each rule has two forms side by side: ``rate`` evaluates a batch column-wise on numpy
arrays (``Columns`` cleaned by ``quality.check``) and ``rate_one`` evaluates one customer
on plain Python values (a ``Record`` cleaned by ``quality.check_one``). Both return the
level and the ``ReasonColumn``s that explain it; a change to one form must be made to the
other, and the batch-equals-one-by-one tests fail until it is. ``engine`` runs them in
dependency order (quality, value, needs, credit, aml, ops, feedback) and ``strategy``
turns one customer's results into CRM actions.
"""
