"""kwast-bench: build, boot, debug and test the Kwast kernel."""
