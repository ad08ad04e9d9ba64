"""AVATAR: off-policy GRPO with hierarchical replay and Temporal Advantage Shaping for audio-visual LLMs."""

__version__ = "0.1.0"
