"""cv_rewards."""
