// torchvision's EfficientNet-B0, module for module.
#include "torch/models/modelfamilies.h"

#include <algorithm>
#include <cmath>
#include <iterator>

namespace ifs::tm {

namespace {

namespace nn = torch::nn;

/// One row of EfficientNet's Table 1 (torchvision's MBConvConfig at width and depth 1.0).
struct StageConfig
{
    double expandRatio;
    int64_t kernel, stride, inputChannels, outChannels, layers;
};

/// torchvision.models.efficientnet.MBConv: expand (1×1) → depthwise → squeeze-excitation →
/// project (1×1), with stochastic depth on the residual branch.
struct MBConv : nn::Module
{
    Sequence block{nullptr};
    StochasticDepth stochasticDepth{nullptr};
    bool useResidual = false;

    MBConv(const StageConfig &c, int64_t input, int64_t stride, double stochasticDepthProb)
    {
        useResidual = stride == 1 && input == c.outChannels;
        const BatchNormSpec bn;
        const int64_t expanded = makeDivisible(double(input) * c.expandRatio);
        Sequence layers;
        if (expanded != input)
            layers->push_back(convNormActivation(input, expanded, 1, 1, 1, bn, Act::SiLU));
        layers->push_back(
            convNormActivation(expanded, expanded, c.kernel, stride, expanded, bn, Act::SiLU));
        layers->push_back(SqueezeExcitation(expanded, std::max<int64_t>(1, input / 4),
                                            Activation(Act::SiLU, /*inPlace=*/true),
                                            Activation(Act::Sigmoid)));
        layers->push_back(convNormActivation(expanded, c.outChannels, 1, 1, 1, bn, std::nullopt));
        block = register_module("block", layers);
        stochasticDepth = register_module("stochastic_depth", StochasticDepth(stochasticDepthProb));
    }

    torch::Tensor forward(torch::Tensor x)
    {
        torch::Tensor result = block->forward(x);
        if (useResidual) {
            result = stochasticDepth->forward(result);
            result += x;
        }
        return result;
    }
};

/// torchvision.models.EfficientNet with efficientnet_b0's configuration (dropout 0.2, stochastic
/// depth 0.2, BatchNorm with PyTorch's defaults).
struct EfficientNet : Net
{
    nn::Sequential features{nullptr};
    nn::Sequential classifier{nullptr};

    explicit EfficientNet(int64_t numClasses)
    {
        static constexpr StageConfig stages[]
            = {{1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},  {6, 5, 2, 24, 40, 2},
               {6, 3, 2, 40, 80, 3},  {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4},
               {6, 3, 1, 192, 320, 1}};
        constexpr double stochasticDepthProb = 0.2;
        int64_t totalBlocks = 0;
        for (const StageConfig &c : stages)
            totalBlocks += c.layers;

        nn::Sequential f;
        f->push_back(convNormActivation(3, stages[0].inputChannels, 3, 2, 1, {}, Act::SiLU));
        int64_t blockId = 0;
        for (const StageConfig &c : stages) {
            Sequence stage;
            for (int64_t i = 0; i < c.layers; ++i) {
                // The rate grows linearly with the block's depth, as torchvision's.
                const double p = stochasticDepthProb * double(blockId) / double(totalBlocks);
                stage->push_back(std::make_shared<MBConv>(
                    c, i == 0 ? c.inputChannels : c.outChannels, i == 0 ? c.stride : 1, p));
                ++blockId;
            }
            f->push_back(stage);
        }
        const int64_t last = 4 * stages[std::size(stages) - 1].outChannels;
        f->push_back(convNormActivation(last / 4, last, 1, 1, 1, {}, Act::SiLU));
        features = register_module("features", f);
        classifier
            = register_module("classifier",
                              nn::Sequential(nn::Dropout(nn::DropoutOptions(0.2).inplace(true)),
                                             nn::Linear(last, numClasses)));

        // As torchvision: Kaiming-normal (fan_out) convolutions with zero bias, BatchNorm 1/0,
        // Linear uniform(±1/√out_features) with zero bias.
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
                const double range = 1.0 / std::sqrt(double(l->weight.size(0)));
                nn::init::uniform_(l->weight, -range, range);
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

} // namespace

const QList<ModelDefinition> &efficientNetModels()
{
    static const QList<ModelDefinition> models = {
        {{.name = QStringLiteral("efficientnet_b0"),
          .title = QStringLiteral("EfficientNet-B0"),
          .description = QStringLiteral("4.0M parameters: ResNet-50's ImageNet accuracy at a "
                                        "fraction of its compute; a strong choice for transfer"),
          .headPrefix = QStringLiteral("classifier.1."),
          .pythonConstructor
          = QStringLiteral("torchvision.models.efficientnet_b0(num_classes={N})"),
          .parameters10 = 4'020'358,
          .outputStride = 32},
         [](int64_t numClasses) -> std::shared_ptr<Net> {
             return std::make_shared<EfficientNet>(numClasses);
         }},
    };
    return models;
}

} // namespace ifs::tm
