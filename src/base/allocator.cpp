#include "base/allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ifs {

void tuneAllocator()
{
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
#endif
}

} // namespace ifs
