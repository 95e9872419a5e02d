"""Per-frame conditioning: pinned frames, prompt travel."""
