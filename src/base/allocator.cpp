#include "base/allocator.h"

#include "base/logging.h"

// <malloc.h> comes first: __GLIBC__ is defined by the C library's own headers (<features.h>),
// so a test of it before any of them is always false. That compiled both settings out of every
// executable until issue 13.
#if __has_include(<malloc.h>)
#include <malloc.h>
#endif

#if defined(__gnu_linux__) && !defined(__GLIBC__)
#error "glibc's headers were not seen: tuneAllocator() would silently do nothing"
#endif

namespace ifs {

AllocatorTuning tuneAllocator()
{
    AllocatorTuning tuning;
#if defined(__GLIBC__)
    tuning.supported = true;
    // Setting either one also turns off glibc's dynamic threshold, which would otherwise start
    // at 128 KiB again after a trim.
    tuning.mmapThreshold = mallopt(M_MMAP_THRESHOLD, kAllocatorMmapThreshold) == 1;
    tuning.trimThreshold = mallopt(M_TRIM_THRESHOLD, kAllocatorTrimThreshold) == 1;
    if (!tuning.applied())
        qCWarning(lcRuntime,
                  "glibc refused the allocator settings (mmap threshold: %s, trim "
                  "threshold: %s): large buffers are mapped afresh at every use",
                  tuning.mmapThreshold ? "set" : "refused",
                  tuning.trimThreshold ? "set" : "refused");
#endif
    return tuning;
}

} // namespace ifs
