// torchvision's MobileNetV3 (small and large, width 1.0), module for module.
#include "torch/models/modelfamilies.h"

#include <vector>

namespace ifs::tm {

namespace {

namespace nn = torch::nn;

/// A row of the paper's Tables 1 and 2 (torchvision's InvertedResidualConfig at width 1.0,
/// dilation 1).
struct BlockConfig
{
    int64_t input, kernel, expanded, out;
    bool squeezeExcite;
    bool hardswish; ///< "HS", else "RE" (ReLU)
    int64_t stride;
};

/// MobileNetV3's BatchNorm: eps 0.001, momentum 0.01.
constexpr BatchNormSpec kNorm{.eps = 0.001, .momentum = 0.01};

/// torchvision.models.mobilenetv3.InvertedResidual
struct InvertedResidual : nn::Module
{
    Sequence block{nullptr};
    bool useResidual = false;

    explicit InvertedResidual(const BlockConfig &c)
    {
        useResidual = c.stride == 1 && c.input == c.out;
        const Act act = c.hardswish ? Act::Hardswish : Act::ReLU;
        Sequence layers;
        if (c.expanded != c.input)
            layers->push_back(convNormActivation(c.input, c.expanded, 1, 1, 1, kNorm, act));
        layers->push_back(
            convNormActivation(c.expanded, c.expanded, c.kernel, c.stride, c.expanded, kNorm, act));
        if (c.squeezeExcite) {
            layers->push_back(SqueezeExcitation(c.expanded, makeDivisible(double(c.expanded / 4)),
                                                Activation(Act::ReLU),
                                                Activation(Act::Hardsigmoid)));
        }
        layers->push_back(convNormActivation(c.expanded, c.out, 1, 1, 1, kNorm, std::nullopt));
        block = register_module("block", layers);
    }

    torch::Tensor forward(torch::Tensor x)
    {
        torch::Tensor result = block->forward(x);
        if (useResidual)
            result += x;
        return result;
    }
};

/// torchvision.models.MobileNetV3 (dropout 0.2)
struct MobileNetV3 : Net
{
    nn::Sequential features{nullptr};
    nn::Sequential classifier{nullptr};

    MobileNetV3(const std::vector<BlockConfig> &blocks, int64_t lastChannel, int64_t numClasses)
    {
        nn::Sequential f;
        f->push_back(convNormActivation(3, blocks.front().input, 3, 2, 1, kNorm, Act::Hardswish));
        for (const BlockConfig &c : blocks)
            f->push_back(std::make_shared<InvertedResidual>(c));
        const int64_t lastConv = 6 * blocks.back().out;
        f->push_back(
            convNormActivation(blocks.back().out, lastConv, 1, 1, 1, kNorm, Act::Hardswish));
        features = register_module("features", f);
        classifier = register_module(
            "classifier",
            nn::Sequential(nn::Linear(lastConv, lastChannel), Activation(Act::Hardswish, true),
                           nn::Dropout(nn::DropoutOptions(0.2).inplace(true)),
                           nn::Linear(lastChannel, numClasses)));

        // As torchvision: Kaiming-normal (fan_out) convolutions with zero bias, BatchNorm 1/0,
        // Linear N(0, 0.01) with zero bias.
        torch::NoGradGuard noGrad;
        for (const auto &module : modules(false)) {
            if (auto *c = module->as<nn::Conv2d>()) {
                nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut);
                if (c->bias.defined())
                    nn::init::zeros_(c->bias);
            } else if (auto *b = module->as<nn::BatchNorm2d>()) {
                nn::init::ones_(b->weight);
                nn::init::zeros_(b->bias);
            } else if (auto *l = module->as<nn::Linear>()) {
                nn::init::normal_(l->weight, 0.0, 0.01);
                nn::init::zeros_(l->bias);
            }
        }
    }

    torch::Tensor camForward(torch::Tensor x) override { return features->forward(x); }

    torch::Tensor poolForward(torch::Tensor x) override
    {
        return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    }

    torch::Tensor headForward(torch::Tensor x) override { return classifier->forward(x); }
};

// torchvision's _mobilenet_v3_conf: input, kernel, expanded, out, SE, hardswish, stride.
const std::vector<BlockConfig> kLarge = {
    {16, 3, 16, 16, false, false, 1},  {16, 3, 64, 24, false, false, 2},
    {24, 3, 72, 24, false, false, 1},  {24, 5, 72, 40, true, false, 2},
    {40, 5, 120, 40, true, false, 1},  {40, 5, 120, 40, true, false, 1},
    {40, 3, 240, 80, false, true, 2},  {80, 3, 200, 80, false, true, 1},
    {80, 3, 184, 80, false, true, 1},  {80, 3, 184, 80, false, true, 1},
    {80, 3, 480, 112, true, true, 1},  {112, 3, 672, 112, true, true, 1},
    {112, 5, 672, 160, true, true, 2}, {160, 5, 960, 160, true, true, 1},
    {160, 5, 960, 160, true, true, 1},
};
const std::vector<BlockConfig> kSmall = {
    {16, 3, 16, 16, true, false, 2},  {16, 3, 72, 24, false, false, 2},
    {24, 3, 88, 24, false, false, 1}, {24, 5, 96, 40, true, true, 2},
    {40, 5, 240, 40, true, true, 1},  {40, 5, 240, 40, true, true, 1},
    {40, 5, 120, 48, true, true, 1},  {48, 5, 144, 48, true, true, 1},
    {48, 5, 288, 96, true, true, 2},  {96, 5, 576, 96, true, true, 1},
    {96, 5, 576, 96, true, true, 1},
};

} // namespace

const QList<ModelDefinition> &mobileNetV3Models()
{
    static const QList<ModelDefinition> models = {
        {{.name = QStringLiteral("mobilenet_v3_small"),
          .title = QStringLiteral("MobileNetV3-Small"),
          .description = QStringLiteral("1.5M parameters: the fastest here; for phones and quick "
                                        "experiments, a few points below the larger models"),
          .headPrefix = QStringLiteral("classifier.3."),
          .pythonConstructor
          = QStringLiteral("torchvision.models.mobilenet_v3_small(num_classes={N})"),
          .parameters10 = 1'528'106,
          .outputStride = 32},
         [](int64_t numClasses) -> std::shared_ptr<Net> {
             return std::make_shared<MobileNetV3>(kSmall, 1024, numClasses);
         }},
        {{.name = QStringLiteral("mobilenet_v3_large"),
          .title = QStringLiteral("MobileNetV3-Large"),
          .description = QStringLiteral("4.2M parameters: fast on a CPU, more accurate than "
                                        "MobileNetV2; a good default for deployment"),
          .headPrefix = QStringLiteral("classifier.3."),
          .pythonConstructor
          = QStringLiteral("torchvision.models.mobilenet_v3_large(num_classes={N})"),
          .parameters10 = 4'214'842,
          .outputStride = 32},
         [](int64_t numClasses) -> std::shared_ptr<Net> {
             return std::make_shared<MobileNetV3>(kLarge, 1280, numClasses);
         }},
    };
    return models;
}

} // namespace ifs::tm
