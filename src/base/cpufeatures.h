#pragma once

// What the CPU can do natively, read with cpuid (no libtorch needed: the GUI asks too).

#include <QString>

namespace ifs {

/// Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16) and the OS saves the
/// registers it needs: where bf16 autocast is fast. False on other architectures.
/// IFS_CPU_BF16=0|1 in the environment overrides the detection (tests, comparisons).
bool cpuHasNativeBf16();

/// "AVX512-BF16", "AMX-BF16, AVX512-BF16" or "none": for notes and bench output.
QString cpuBf16Features();

} // namespace ifs
