"""edge-vision on-device runtime. Never imports torch, conversion or calibration."""
