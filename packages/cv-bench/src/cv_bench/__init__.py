"""cv_bench."""
