"""GestureGAN: instrument."""
