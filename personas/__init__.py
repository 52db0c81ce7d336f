"""Who shops: the persona model, the seed library and the sampler."""
