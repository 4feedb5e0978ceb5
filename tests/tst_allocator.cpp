// tuneAllocator() really changes glibc's malloc: the settings are acknowledged, and a large
// block comes from the heap and is reused after free() instead of being mapped afresh (whose
// pages fault in one by one at every use). Issue 13 found both settings compiled out.
#include "base/allocator.h"

#include <QTest>

#include <cstdlib>
#include <cstring>

#if __has_include(<malloc.h>)
#include <malloc.h>
#endif
#include <sys/resource.h>
#include <unistd.h>

using namespace ifs;

namespace {

constexpr size_t kBlock = 64 * 1024 * 1024; // above glibc's largest dynamic threshold (32 MiB)

long minorFaults()
{
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
}

/// Allocates kBlock bytes, touches every page and frees them; returns the minor page faults
/// that took and whether the block was an mmap of its own (mallinfo2's hblkhd grew).
std::pair<long, bool> touchBlock()
{
#if defined(__GLIBC__)
    const size_t mappedBefore = mallinfo2().hblkhd;
#endif
    const long before = minorFaults();
    char *volatile block = static_cast<char *>(std::malloc(kBlock));
    if (!block)
        return {-1, false};
    std::memset(block, 1, kBlock);
    const long faults = minorFaults() - before;
    bool mapped = false;
#if defined(__GLIBC__)
    mapped = mallinfo2().hblkhd >= mappedBefore + kBlock;
#endif
    std::free(block);
    return {faults, mapped};
}

} // namespace

class TestAllocator : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void settingsTakeEffect()
    {
#if !defined(__GLIBC__)
        QSKIP("not glibc: tuneAllocator() has nothing to set");
#else
        const AllocatorTuning tuning = tuneAllocator();
        QVERIFY(tuning.supported);
        QVERIFY2(tuning.mmapThreshold, "mallopt(M_MMAP_THRESHOLD) refused");
        QVERIFY2(tuning.trimThreshold, "mallopt(M_TRIM_THRESHOLD) refused");
        QVERIFY(tuning.applied());
#endif
    }

    /// With the settings, a 64 MiB block lives in the heap, and the second one reuses the
    /// pages of the first: (almost) no page faults. Without them every allocation is a fresh
    /// mmap of 16384 pages that all fault in again.
    void largeBlocksAreReused()
    {
#if !defined(__GLIBC__)
        QSKIP("not glibc");
#else
        tuneAllocator();
        const auto [firstFaults, firstMapped] = touchBlock();
        QVERIFY(firstFaults >= 0);
        QVERIFY2(!firstMapped, "a 64 MiB block was mapped on its own: the threshold is not set");
        const auto [secondFaults, secondMapped] = touchBlock();
        QVERIFY(!secondMapped);
        const long pages = long(kBlock / size_t(sysconf(_SC_PAGESIZE)));
        QVERIFY2(secondFaults < pages / 8,
                 qPrintable(QStringLiteral("the second 64 MiB block took %1 page faults (%2 "
                                           "pages): it was handed back and mapped afresh")
                                .arg(secondFaults)
                                .arg(pages)));
#endif
    }
};

QTEST_GUILESS_MAIN(TestAllocator)
#include "tst_allocator.moc"
