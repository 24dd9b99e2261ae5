"""Settings and URLconfs of other sites than the demo, for tests that need them."""
