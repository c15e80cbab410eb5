"""The emulator's optional live video stream: QEMU's VNC display, encoded as VP8, sent as
RTP to a configured receiver and played to browsers over WebRTC (docs/stream.md)."""
