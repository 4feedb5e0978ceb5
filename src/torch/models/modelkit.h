#pragma once

// What a model's file (src/torch/models/<family>.cpp) needs: the definition it registers and the
// building blocks torchvision's architectures share. ifs_torch only (pulls in libtorch).

#include "torch/torchmodels.h"
#include "training/models.h"

#include <functional>
#include <memory>
#include <optional>

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

/// An nn::Sequential that can sit inside another (its forward is not a template), as torchvision
/// nests nn.Sequential: children named "0", "1", … or by the names given to push_back.
struct SequenceImpl : torch::nn::SequentialImpl
{
    using SequentialImpl::SequentialImpl;
    torch::Tensor forward(torch::Tensor x) { return SequentialImpl::forward(std::move(x)); }
};
TORCH_MODULE(Sequence);

/// The parameter-free activations of torchvision's models. A module of its own (rather than a
/// call in forward) so that the Sequential indices after it, and the state dict's `_metadata`,
/// are torchvision's.
enum class Act { ReLU, SiLU, Hardswish, Hardsigmoid, Sigmoid, GELU };

/// nn.ReLU / nn.SiLU / nn.Hardswish / … with `inplace` as torchvision constructs it (the result
/// is the same; in place saves memory where Python does too).
struct ActivationImpl : torch::nn::Module
{
    Act kind;
    bool inplace;
    explicit ActivationImpl(Act k, bool inPlace = false)
        : kind(k)
        , inplace(inPlace)
    { }
    torch::Tensor forward(torch::Tensor x);
};
TORCH_MODULE(Activation);

/// Options of nn.BatchNorm2d: eps 1e-5 and momentum 0.1 by default; MobileNetV3 uses 1e-3 and
/// 0.01.
struct BatchNormSpec
{
    double eps = 1e-5;
    double momentum = 0.1;
};

/// torchvision.ops.Conv2dNormActivation(in, out, kernel, stride, groups=groups,
/// norm_layer=BatchNorm2d(spec), activation_layer=act): Sequential(conv, bn[, act]), padding
/// (kernel − 1) / 2, no convolution bias. `act` empty: no activation (a projection).
Sequence convNormActivation(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                            BatchNormSpec norm, std::optional<Act> act);

/// torchvision.ops.SqueezeExcitation: avgpool → fc1 (1×1 conv) → activation → fc2 →
/// scale_activation, times the input.
struct SqueezeExcitationImpl : torch::nn::Module
{
    torch::nn::Conv2d fc1{nullptr}, fc2{nullptr};
    Activation activation{nullptr}, scaleActivation{nullptr};
    SqueezeExcitationImpl(int64_t inputChannels, int64_t squeezeChannels, Activation act,
                          Activation scaleAct);
    torch::Tensor forward(torch::Tensor x);
};
TORCH_MODULE(SqueezeExcitation);

/// torchvision.ops.StochasticDepth(p, "row"): in training, zeroes each sample of the batch with
/// probability p (and scales the others by 1 / (1 − p)), drawing one Bernoulli per sample from
/// torch's generator as torchvision does; the identity in eval mode.
struct StochasticDepthImpl : torch::nn::Module
{
    double p;
    explicit StochasticDepthImpl(double probability)
        : p(probability)
    { }
    torch::Tensor forward(torch::Tensor x);
};
TORCH_MODULE(StochasticDepth);

/// torchvision.models._utils._make_divisible: `v` rounded to a multiple of `divisor` (at least
/// `divisor`), never more than 10% below `v`.
int64_t makeDivisible(double v, int64_t divisor = 8);

} // namespace ifs::tm
