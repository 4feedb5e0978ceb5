// The building blocks torchvision's architectures share (torchvision.ops.misc and
// torchvision.ops.stochastic_depth), module for module.
#include "torch/models/modelkit.h"

#include <algorithm>
#include <vector>

namespace ifs::tm {

namespace nn = torch::nn;

torch::Tensor ActivationImpl::forward(torch::Tensor x)
{
    switch (kind) {
    case Act::ReLU:
        return inplace ? x.relu_() : x.relu();
    case Act::SiLU:
        return inplace ? torch::silu_(x) : torch::silu(x);
    case Act::Hardswish:
        return inplace ? torch::hardswish_(x) : torch::hardswish(x);
    case Act::Hardsigmoid:
        return inplace ? torch::hardsigmoid_(x) : torch::hardsigmoid(x);
    case Act::Sigmoid:
        return x.sigmoid();
    case Act::GELU:
        return torch::gelu(x);
    }
    return x;
}

Sequence convNormActivation(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups,
                            BatchNormSpec norm, std::optional<Act> act)
{
    Sequence sequence;
    sequence->push_back(conv(in, out, kernel, stride, (kernel - 1) / 2, groups));
    sequence->push_back(
        nn::BatchNorm2d(nn::BatchNormOptions(out).eps(norm.eps).momentum(norm.momentum)));
    if (act)
        sequence->push_back(Activation(*act, /*inPlace=*/true)); // Conv2dNormActivation's inplace
    return sequence;
}

SqueezeExcitationImpl::SqueezeExcitationImpl(int64_t inputChannels, int64_t squeezeChannels,
                                             Activation act, Activation scaleAct)
{
    // torchvision's registration order: avgpool, fc1, fc2, activation, scale_activation.
    register_module("avgpool", nn::AdaptiveAvgPool2d(1));
    fc1 = register_module("fc1", nn::Conv2d(nn::Conv2dOptions(inputChannels, squeezeChannels, 1)));
    fc2 = register_module("fc2", nn::Conv2d(nn::Conv2dOptions(squeezeChannels, inputChannels, 1)));
    activation = register_module("activation", std::move(act));
    scaleActivation = register_module("scale_activation", std::move(scaleAct));
}

torch::Tensor SqueezeExcitationImpl::forward(torch::Tensor x)
{
    torch::Tensor scale = torch::adaptive_avg_pool2d(x, {1, 1});
    scale = scaleActivation(fc2(activation(fc1(scale))));
    return scale * x;
}

torch::Tensor StochasticDepthImpl::forward(torch::Tensor x)
{
    if (!is_training() || p == 0.0)
        return x;
    // torchvision.ops.stochastic_depth, mode "row": the same draws in the same order.
    const double survival = 1.0 - p;
    std::vector<int64_t> size(size_t(x.dim()), 1);
    size[0] = x.size(0);
    torch::Tensor noise = torch::empty(size, x.options());
    noise.bernoulli_(survival);
    if (survival > 0.0)
        noise.div_(survival);
    return x * noise;
}

int64_t makeDivisible(double v, int64_t divisor)
{
    int64_t rounded = std::max(divisor, int64_t(v + double(divisor) / 2.0) / divisor * divisor);
    if (double(rounded) < 0.9 * v)
        rounded += divisor;
    return rounded;
}

} // namespace ifs::tm
