"""``driftloop demo``: the whole continuous-training loop on a standard drifting stream."""
