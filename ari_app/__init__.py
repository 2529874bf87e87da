"""ari_app: contact-center control service for Asterisk."""
