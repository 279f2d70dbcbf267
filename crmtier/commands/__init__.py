"""One module per ``crmtier`` command, each exposing a click command named ``command``."""
