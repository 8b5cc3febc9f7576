"""What drives the app from outside, for tests and benchmarks alike: generated media, a running app process,
bad inputs, faults and hostile requests. Imported by tests/ and scripts/, never by the app or the method."""
