"""locotui: the operator console for the emulator fleet."""
