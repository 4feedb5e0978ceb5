// torchvision's ConvNeXt-Tiny, module for module.
#include "torch/models/modelfamilies.h"

#include <cmath>
#include <iterator>
#include <vector>

namespace ifs::tm {

namespace {

namespace nn = torch::nn;

/// torchvision.models.convnext.LayerNorm2d: nn.LayerNorm over the channels of an N×C×H×W
/// tensor (the same parameters, so the same keys).
struct LayerNorm2dImpl : nn::LayerNormImpl
{
    explicit LayerNorm2dImpl(int64_t channels)
        : nn::LayerNormImpl(nn::LayerNormOptions({channels}).eps(1e-6))
    { }
    torch::Tensor forward(torch::Tensor x)
    {
        x = x.permute({0, 2, 3, 1});
        x = torch::layer_norm(x, options.normalized_shape(), weight, bias, options.eps());
        return x.permute({0, 3, 1, 2});
    }
};
TORCH_MODULE(LayerNorm2d);

/// torchvision.ops.Permute
struct PermuteImpl : nn::Module
{
    std::vector<int64_t> dims;
    explicit PermuteImpl(std::vector<int64_t> order)
        : dims(std::move(order))
    { }
    torch::Tensor forward(torch::Tensor x) { return x.permute(dims); }
};
TORCH_MODULE(Permute);

/// torchvision.models.convnext.CNBlock: depthwise 7×7 → LayerNorm → Linear(4×) → GELU →
/// Linear, scaled per channel (layer scale), with stochastic depth, plus the input.
struct CNBlock : nn::Module
{
    Sequence block{nullptr};
    torch::Tensor layerScale;
    StochasticDepth stochasticDepth{nullptr};

    CNBlock(int64_t dim, double layerScaleInit, double stochasticDepthProb)
    {
        // Registered as torchvision does (block, then layer_scale): the state dict lists a
        // module's own parameters before its children's either way.
        block = register_module(
            "block",
            Sequence(nn::Conv2d(nn::Conv2dOptions(dim, dim, 7).padding(3).groups(dim)),
                     Permute(std::vector<int64_t>{0, 2, 3, 1}),
                     nn::LayerNorm(nn::LayerNormOptions({dim}).eps(1e-6)), nn::Linear(dim, 4 * dim),
                     Activation(Act::GELU), nn::Linear(4 * dim, dim),
                     Permute(std::vector<int64_t>{0, 3, 1, 2})));
        layerScale = register_parameter("layer_scale", torch::ones({dim, 1, 1}) * layerScaleInit);
        stochasticDepth = register_module("stochastic_depth", StochasticDepth(stochasticDepthProb));
    }

    torch::Tensor forward(torch::Tensor x)
    {
        torch::Tensor result = layerScale * block->forward(x);
        result = stochasticDepth->forward(result);
        result += x;
        return result;
    }
};

/// nn.init.trunc_normal_(tensor, std=std) with its bounds ±2 (absolute, as torch's defaults),
/// by torch's own method (inverse CDF of a uniform draw), so the draws are torch's.
void truncNormal(torch::Tensor &tensor, double std, double a = -2.0, double b = 2.0)
{
    const auto normCdf = [](double x) {
        return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0;
    };
    const double l = normCdf(a / std), u = normCdf(b / std);
    tensor.uniform_(2 * l - 1, 2 * u - 1);
    tensor.erfinv_();
    tensor.mul_(std * std::sqrt(2.0));
    tensor.clamp_(a, b);
}

/// torchvision.models.ConvNeXt with convnext_tiny's configuration: stages of 3, 3, 9, 3 blocks
/// of 96, 192, 384 and 768 channels, stochastic depth 0.1, layer scale 1e-6.
struct ConvNeXt : Net
{
    nn::Sequential features{nullptr};
    nn::Sequential classifier{nullptr};

    explicit ConvNeXt(int64_t numClasses)
    {
        static constexpr int64_t stages[][2] = {{96, 3}, {192, 3}, {384, 9}, {768, 3}};
        constexpr double stochasticDepthProb = 0.1, layerScaleInit = 1e-6;
        int64_t totalBlocks = 0;
        for (const auto &row : stages)
            totalBlocks += row[1];

        nn::Sequential f;
        f->push_back(Sequence(nn::Conv2d(nn::Conv2dOptions(3, stages[0][0], 4).stride(4)),
                              LayerNorm2d(stages[0][0])));
        int64_t blockId = 0;
        for (size_t s = 0; s < std::size(stages); ++s) {
            const int64_t dim = stages[s][0];
            Sequence stage;
            for (int64_t i = 0; i < stages[s][1]; ++i) {
                // As torchvision: the rate grows linearly from 0 to the last block's.
                const double p = stochasticDepthProb * double(blockId) / double(totalBlocks - 1);
                stage->push_back(std::make_shared<CNBlock>(dim, layerScaleInit, p));
                ++blockId;
            }
            f->push_back(stage);
            if (s + 1 < std::size(stages)) { // downsampling
                const int64_t next = stages[s + 1][0];
                f->push_back(Sequence(LayerNorm2d(dim),
                                      nn::Conv2d(nn::Conv2dOptions(dim, next, 2).stride(2))));
            }
        }
        features = register_module("features", f);
        const int64_t last = stages[std::size(stages) - 1][0];
        classifier = register_module(
            "classifier",
            nn::Sequential(LayerNorm2d(last), nn::Flatten(), nn::Linear(last, numClasses)));

        // As torchvision: truncated-normal (std 0.02) convolutions and Linears with zero bias;
        // the LayerNorms keep 1/0.
        torch::NoGradGuard noGrad;
        for (const auto &module : modules(false)) {
            if (auto *c = module->as<nn::Conv2d>()) {
                truncNormal(c->weight, 0.02);
                nn::init::zeros_(c->bias);
            } else if (auto *l = module->as<nn::Linear>()) {
                truncNormal(l->weight, 0.02);
                nn::init::zeros_(l->bias);
            }
        }
    }

    torch::Tensor camForward(torch::Tensor x) override { return features->forward(x); }

    torch::Tensor poolForward(torch::Tensor x) override
    {
        return torch::adaptive_avg_pool2d(x, {1, 1});
    }

    /// LayerNorm2d, Flatten, Linear: on N×C×1×1 features.
    torch::Tensor headForward(torch::Tensor x) override { return classifier->forward(x); }
};

} // namespace

const QList<ModelDefinition> &convNextModels()
{
    static const QList<ModelDefinition> models = {
        {{.name = QStringLiteral("convnext_tiny"),
          .title = QStringLiteral("ConvNeXt-Tiny"),
          .description = QStringLiteral("27.8M parameters: the most accurate here from ImageNet "
                                        "weights (82.5% top-1); slow on a CPU"),
          .headPrefix = QStringLiteral("classifier.2."),
          .pythonConstructor = QStringLiteral("torchvision.models.convnext_tiny(num_classes={N})"),
          .parameters10 = 27'827'818,
          .outputStride = 32},
         [](int64_t numClasses) -> std::shared_ptr<Net> {
             return std::make_shared<ConvNeXt>(numClasses);
         }},
    };
    return models;
}

} // namespace ifs::tm
