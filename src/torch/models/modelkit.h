#pragma once

// What a model's file (src/torch/models/<family>.cpp) needs: the definition it registers and the
// building blocks torchvision's architectures share. ifs_torch only (pulls in libtorch).

#include "torch/torchmodels.h"
#include "training/models.h"

#include <functional>
#include <memory>

namespace ifs::tm {

/// One architecture the app trains: its description (what the UI, the CLI and checkpoints see)
/// and how to build it.
struct ModelDefinition
{
    ModelArch arch;
    /// The network with `numClasses` outputs, torchvision's module names and initialisation,
    /// drawn from torch's global generator.
    std::function<std::shared_ptr<Net>(int64_t numClasses)> create;
};

/// nn.Conv2d(in, out, kernel, stride, padding, groups=groups, bias=False): the convolution every
/// torchvision architecture here builds on.
torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1,
                       int64_t padding = 0, int64_t groups = 1);

} // namespace ifs::tm
