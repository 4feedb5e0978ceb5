#include "base/memorybudget.h"

#include <QFile>

#include <algorithm>

#include <sys/resource.h>
#include <unistd.h>

namespace ifs {

namespace {

constexpr qint64 kFallbackBytes = qint64(8) << 30;

/// A cgroup memory limit (v2's memory.max, v1's memory.limit_in_bytes), or 0 when none is set.
qint64 cgroupLimit()
{
    for (const char *path :
         {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
        QFile file(QString::fromLatin1(path));
        if (!file.open(QIODevice::ReadOnly))
            continue;
        bool ok = false;
        const qint64 limit = file.readLine().trimmed().toLongLong(&ok); // "max" is no limit
        if (ok && limit > 0)
            return limit;
    }
    return 0;
}

qint64 computeAvailable()
{
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long pageSize = sysconf(_SC_PAGE_SIZE);
    qint64 bytes = pages > 0 && pageSize > 0 ? qint64(pages) * pageSize : kFallbackBytes;
    // Unlimited cgroups read as a huge number, which min() ignores.
    if (const qint64 limit = cgroupLimit(); limit > 0)
        bytes = std::min(bytes, limit);
    rlimit as{};
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
        bytes = std::min(bytes, qint64(as.rlim_cur));
    return std::max<qint64>(bytes, 64 << 20);
}

} // namespace

qint64 availableMemoryBytes()
{
    static const qint64 bytes = computeAvailable();
    return bytes;
}

QString formatBytes(qint64 bytes)
{
    // One decimal, dropped when it is 0: "10.1 GiB", "256 MiB".
    const auto text = [](double value, const char *unit) -> QString {
        QString number = QString::number(value, 'f', 1);
        if (number.endsWith(QLatin1String(".0")))
            number.chop(2);
        return number + QLatin1Char(' ') + QLatin1String(unit);
    };
    constexpr double kKiB = 1024.0;
    constexpr double kMiB = kKiB * 1024.0;
    constexpr double kGiB = kMiB * 1024.0;
    constexpr double kTiB = kGiB * 1024.0;
    const double b = double(bytes);
    if (b >= kTiB)
        return text(b / kTiB, "TiB");
    if (b >= kGiB)
        return text(b / kGiB, "GiB");
    if (b >= kMiB)
        return text(b / kMiB, "MiB");
    return text(std::max(b, 0.0) / kKiB, "KiB");
}

} // namespace ifs
