"""GestureGAN: export."""
