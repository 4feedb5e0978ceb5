#pragma once

namespace ifs {

/// What tuneAllocator() put in effect: each setting as the C library acknowledged it.
struct AllocatorTuning
{
    bool supported = false; ///< glibc's malloc (elsewhere the call changes nothing)
    bool mmapThreshold = false; ///< mallopt(M_MMAP_THRESHOLD) returned 1
    bool trimThreshold = false; ///< mallopt(M_TRIM_THRESHOLD) returned 1

    /// Both settings are in effect.
    bool applied() const { return supported && mmapThreshold && trimThreshold; }
};

/// Blocks up to this size come from the heap, not from a fresh mmap (256 MiB).
inline constexpr int kAllocatorMmapThreshold = 256 * 1024 * 1024;
/// The heap keeps this much freed memory at its top before handing it back (512 MiB).
inline constexpr int kAllocatorTrimThreshold = 512 * 1024 * 1024;

/// Keeps big freed buffers in the heap instead of handing them back to the kernel at every
/// free(): with glibc's defaults each image buffer or batch above 128 KiB (32 MiB once the
/// dynamic threshold has grown) is a fresh mmap whose pages fault in one by one on first touch,
/// which here costs about as much as decoding the image (see shared/notes/machine-performance.md)
/// and halves training throughput. Call first thing in main(), before threads start; every
/// executable does. Returns what took effect (a warning goes to the log when a setting was
/// refused).
AllocatorTuning tuneAllocator();

} // namespace ifs
