"""GestureGAN: train."""
