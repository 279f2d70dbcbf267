"""``crmtier demo``: the whole product on a local sandbox, with no configuration."""
