#pragma once

// How much memory this process may count on, to size bounds on work that grows with its input
// (a transform's output, a batch) before allocating it, instead of meeting std::bad_alloc or the
// OOM killer half-way.

#include <QString>
#include <QtGlobal>

namespace ifs {

/// The memory this process can use: the machine's physical memory, or less where a cgroup limit
/// (a container) or RLIMIT_AS says so. Computed once; 8 GiB when it cannot be read.
qint64 availableMemoryBytes();

/// A byte count for people: "512 MiB", "10.1 GiB".
QString formatBytes(qint64 bytes);

} // namespace ifs
