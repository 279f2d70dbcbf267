"""The test suite, a package so that test packages (tests.webhooks, tests.zoho) never
shadow the source packages of the same name (webhooks)."""
