"""From traces to policies: datasets, rationale synthesis, SFT, GRPO, evaluation."""
