"""`python -m bench`: what the agent costs next to its peers, and how many hosts one gateway carries.

See docs/benchmarks.md."""
