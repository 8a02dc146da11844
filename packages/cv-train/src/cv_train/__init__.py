"""cv_train."""
