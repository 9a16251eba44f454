"""reviewer: review GitLab merge requests with any OpenAI-compatible model."""

__version__ = "0.1.0"
