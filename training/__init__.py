"""Training-side tools of CosmicNet for Cobaya: data generation, training, validation."""
