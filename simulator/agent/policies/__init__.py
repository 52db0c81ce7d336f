"""Policy backends: all answer the same async ``Policy.act`` for a batch of shoppers."""
