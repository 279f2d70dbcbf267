"""The real-time path's receiver: verify a CRM's change notification on its raw bytes,
commit it durably to the inbox, acknowledge it, and never call the CRM on the way.

``app`` is the ASGI receiver, ``settings`` the ``[webhooks]`` section, ``runtime`` puts the
receiver, the inbox and the worker (``sync.worker``) together for ``crmtier serve``.
"""
