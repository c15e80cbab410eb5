"""The test guest: a boot sector that animates a frame counter for frame-rate ground truth.

``write_test_image`` writes a bootable 1 MiB raw image (no nasm needed: the assembled
``boot.bin`` ships with the package); ``decode_frame_counter`` reads the counter back out of
a screenshot of it.
"""

from emulator.testimage.build import write_test_image
from emulator.testimage.decode import decode_frame_counter

__all__ = ["decode_frame_counter", "write_test_image"]
