"""The loop: prompt format, policy backends, session runner, traces, replay, reports, the CLI."""
