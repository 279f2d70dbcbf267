"""Tiering rules, one module per dimension, each in one form: vectorised over a batch.

``rate`` evaluates a batch column-wise on numpy arrays (``Columns`` cleaned by
``quality.check``) and returns the levels and the ``ReasonColumn``s that explain them; one
customer (the webhook path) is a batch of one. ``engine`` runs them in dependency order
(quality, value, needs, credit, aml, ops, feedback, consent) and ``strategy`` turns one
customer's results into CRM actions. Rules are pure: no I/O, no clock (``as_of`` is an
input).
"""
