"""animlong: long AnimateDiff animations through windowed denoising (engine; never imports the webui)."""
