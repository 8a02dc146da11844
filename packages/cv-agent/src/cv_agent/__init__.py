"""cv_agent."""
