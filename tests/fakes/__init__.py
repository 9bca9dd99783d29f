"""Local fakes of provider APIs, shared by tests and benchmarks."""
