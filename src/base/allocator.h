#pragma once

namespace ifs {

/// Keeps big freed buffers in the heap instead of handing them back to the kernel at every
/// free(): with glibc's defaults each image buffer or batch above 128 KiB is a fresh mmap whose
/// pages fault in one by one on first touch, which here costs about as much as decoding the
/// image (see shared/notes/machine-performance.md). Call once at start-up, before threads start.
void tuneAllocator();

} // namespace ifs
