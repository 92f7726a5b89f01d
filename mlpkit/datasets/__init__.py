"""Data files shipped inside mlpkit (see SOURCE.md for attribution)."""
