pytest_plugins = ["pipeline.testing"]
