"""cv_data."""
