#include "base/cpufeatures.h"

#include <QStringList>

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace ifs {

namespace {

struct Bf16Features
{
    bool avx512 = false; ///< AVX512-BF16 (cpuid 7.1 EAX bit 5), with the OS saving ZMM state
    bool amx = false; ///< AMX-BF16 (cpuid 7.0 EDX bit 22), with the OS saving tile state
};

Bf16Features detect()
{
    Bf16Features f;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) // OSXSAVE: xgetbv is usable
        return f;
    unsigned lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    const unsigned long long xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
    // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM state: what AVX-512 code needs saved.
    const bool zmmState = (xcr0 & 0xe6) == 0xe6;
    // XTILECFG and XTILEDATA: AMX tiles (Linux also wants a permission request, which oneDNN
    // makes itself).
    const bool tileState = (xcr0 & (3ull << 17)) == (3ull << 17);
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return f;
    const bool avx512f = b & (1u << 16);
    f.amx = tileState && (d & (1u << 22));
    if (a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
        f.avx512 = zmmState && avx512f && (a & (1u << 5));
#endif
    return f;
}

const Bf16Features &features()
{
    static const Bf16Features f = detect();
    return f;
}

} // namespace

bool cpuHasNativeBf16()
{
    if (const char *forced = std::getenv("IFS_CPU_BF16"); forced && *forced)
        return std::strcmp(forced, "0") != 0;
    return features().avx512 || features().amx;
}

QString cpuBf16Features()
{
    QStringList names;
    if (features().amx)
        names.append(QStringLiteral("AMX-BF16"));
    if (features().avx512)
        names.append(QStringLiteral("AVX512-BF16"));
    return names.isEmpty() ? QStringLiteral("none") : names.join(QStringLiteral(", "));
}

} // namespace ifs
