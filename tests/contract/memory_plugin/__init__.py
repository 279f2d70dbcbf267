"""A fourth CRM that lives only in the tests: an in-memory book of customers behind the
connector contract, shipped as a connector plugin the way a separate package would ship one."""
