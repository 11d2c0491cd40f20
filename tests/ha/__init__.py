"""Home Assistant layer: the integration in a test instance, against simulators (end to end) or in-memory fakes."""
