#include "torch/runtime.h"

#include "base/allocator.h"

#include <torch/torch.h>

#include <algorithm>
#include <thread>

namespace ifs {

int configureRuntime(int requestedThreads)
{
    tuneAllocator();

    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    const int threads = requestedThreads > 0 ? requestedThreads : cores;
    at::set_num_threads(threads);
    return at::get_num_threads();
}

int computeThreads()
{
    return at::get_num_threads();
}

QStringList cudaDevices()
{
    QStringList devices;
    if (!torch::cuda::is_available())
        return devices;
    const int count = int(torch::cuda::device_count());
    for (int i = 0; i < count; ++i)
        devices.append(QStringLiteral("cuda:%1").arg(i));
    return devices;
}

QString torchDescription()
{
    QString text = QStringLiteral("libtorch %1.%2.%3")
                       .arg(TORCH_VERSION_MAJOR)
                       .arg(TORCH_VERSION_MINOR)
                       .arg(TORCH_VERSION_PATCH);
    if (torch::cuda::is_available())
        return text + QStringLiteral(" (CUDA, %1 GPU)").arg(torch::cuda::device_count());
    return text + QStringLiteral(" (CPU)");
}

} // namespace ifs
