"""Networks and their training: models, losses, training, selection, corrections."""
