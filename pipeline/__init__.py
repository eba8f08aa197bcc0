"""Run the telemetry pipeline's backends on one machine (not part of the agent's wheel)."""
