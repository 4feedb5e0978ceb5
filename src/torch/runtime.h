#pragma once

#include <QString>
#include <QStringList>

namespace ifs {

/// Process-wide compute set-up, done once at start-up by both executables.
/// libtorch 1.13 uses half the cores by default; we use all unless told otherwise.
/// Also keeps large freed blocks in the heap (see shared/notes/machine-performance.md): first
/// touches of fresh pages are the dominant cost of big tensor allocations on these machines.
/// Returns the thread count now in effect.
int configureRuntime(int requestedThreads = 0);

/// Intra-op threads libtorch uses now.
int computeThreads();

/// The CUDA devices libtorch sees, as location tags: {"cuda:0", "cuda:1"}; empty without CUDA.
QStringList cudaDevices();

/// "libtorch 1.13.1 (CPU)" / "libtorch 2.1.0 (CUDA 12.1, 1 GPU)".
QString torchDescription();

} // namespace ifs
