"""modules.sd_hijack: `current_optimizer` is the webui's cross-attention optimisation in effect (an object
with `name`, e.g. "sdp", "xformers"; None without one)."""
current_optimizer = None
