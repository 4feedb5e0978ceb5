// torchvision's DenseNet-121 (memory_efficient=False), module for module.
#include "torch/models/modelfamilies.h"

#include <iterator>
#include <string>
#include <vector>

namespace ifs::tm {

namespace {

namespace nn = torch::nn;

/// torchvision.models.densenet._DenseLayer: BN → ReLU → 1×1 conv (bn_size × growth) → BN →
/// ReLU → 3×3 conv (growth) over the concatenation of every earlier feature map of its block.
struct DenseLayer : nn::Module
{
    nn::BatchNorm2d norm1{nullptr}, norm2{nullptr};
    nn::Conv2d conv1{nullptr}, conv2{nullptr};

    DenseLayer(int64_t inputFeatures, int64_t growthRate, int64_t bnSize)
    {
        norm1 = register_module("norm1", nn::BatchNorm2d(inputFeatures));
        register_module("relu1", nn::ReLU(nn::ReLUOptions(true)));
        conv1 = register_module("conv1", conv(inputFeatures, bnSize * growthRate, 1));
        norm2 = register_module("norm2", nn::BatchNorm2d(bnSize * growthRate));
        register_module("relu2", nn::ReLU(nn::ReLUOptions(true)));
        conv2 = register_module("conv2", conv(bnSize * growthRate, growthRate, 3, 1, 1));
    }

    /// The new feature maps (growth rate channels) from the block's maps so far.
    torch::Tensor forward(const std::vector<torch::Tensor> &previous)
    {
        torch::Tensor x = conv1(norm1(torch::cat(previous, 1)).relu_());
        return conv2(norm2(x).relu_());
    }
};

/// torchvision.models.densenet._DenseBlock: layers "denselayer1", … each fed the concatenation
/// of the block's input and all earlier layers' outputs; returns that concatenation.
struct DenseBlockImpl : nn::Module
{
    std::vector<std::shared_ptr<DenseLayer>> layers;

    DenseBlockImpl(int64_t count, int64_t inputFeatures, int64_t bnSize, int64_t growthRate)
    {
        for (int64_t i = 0; i < count; ++i) {
            layers.push_back(register_module(
                "denselayer" + std::to_string(i + 1),
                std::make_shared<DenseLayer>(inputFeatures + i * growthRate, growthRate, bnSize)));
        }
    }

    torch::Tensor forward(torch::Tensor x)
    {
        std::vector<torch::Tensor> features{std::move(x)};
        features.reserve(layers.size() + 1);
        for (const auto &layer : layers)
            features.push_back(layer->forward(features));
        return torch::cat(features, 1);
    }
};
TORCH_MODULE(DenseBlock);

/// torchvision.models.densenet._Transition: BN → ReLU → 1×1 conv → 2×2 average pooling.
Sequence transition(int64_t inputFeatures, int64_t outputFeatures)
{
    Sequence t;
    t->push_back("norm", nn::BatchNorm2d(inputFeatures));
    t->push_back("relu", nn::ReLU(nn::ReLUOptions(true)));
    t->push_back("conv", conv(inputFeatures, outputFeatures, 1));
    t->push_back("pool", nn::AvgPool2d(nn::AvgPool2dOptions(2).stride(2)));
    return t;
}

/// torchvision.models.DenseNet with densenet121's configuration: growth rate 32, blocks of 6,
/// 12, 24 and 16 layers, 64 initial features, bottleneck size 4, no dropout.
struct DenseNet : Net
{
    nn::Sequential features{nullptr};
    nn::Linear classifier{nullptr};

    explicit DenseNet(int64_t numClasses)
    {
        constexpr int64_t growthRate = 32, initialFeatures = 64, bnSize = 4;
        static constexpr int64_t blockLayers[] = {6, 12, 24, 16};
        nn::Sequential f;
        f->push_back("conv0", conv(3, initialFeatures, 7, 2, 3));
        f->push_back("norm0", nn::BatchNorm2d(initialFeatures));
        f->push_back("relu0", nn::ReLU(nn::ReLUOptions(true)));
        f->push_back("pool0", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
        int64_t channels = initialFeatures;
        for (size_t i = 0; i < std::size(blockLayers); ++i) {
            const std::string index = std::to_string(i + 1);
            f->push_back("denseblock" + index,
                         DenseBlock(blockLayers[i], channels, bnSize, growthRate));
            channels += blockLayers[i] * growthRate;
            if (i + 1 < std::size(blockLayers)) {
                f->push_back("transition" + index, transition(channels, channels / 2));
                channels /= 2;
            }
        }
        f->push_back("norm5", nn::BatchNorm2d(channels));
        features = register_module("features", f);
        classifier = register_module("classifier", nn::Linear(channels, numClasses));

        // As torchvision: Kaiming-normal convolutions (fan_in, gain √2), BatchNorm 1/0, the
        // Linear's weight with PyTorch's default initialisation and a zero bias.
        torch::NoGradGuard noGrad;
        for (const auto &module : modules(false)) {
            if (auto *c = module->as<nn::Conv2d>()) {
                nn::init::kaiming_normal_(c->weight);
            } else if (auto *b = module->as<nn::BatchNorm2d>()) {
                nn::init::ones_(b->weight);
                nn::init::zeros_(b->bias);
            } else if (auto *l = module->as<nn::Linear>()) {
                nn::init::zeros_(l->bias);
            }
        }
    }

    /// After torchvision's F.relu on features: the maps its pooling averages.
    torch::Tensor camForward(torch::Tensor x) override { return features->forward(x).relu_(); }

    torch::Tensor poolForward(torch::Tensor x) override
    {
        return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    }

    torch::Tensor headForward(torch::Tensor x) override { return classifier(x); }
};

} // namespace

const QList<ModelDefinition> &denseNetModels()
{
    static const QList<ModelDefinition> models = {
        {{.name = QStringLiteral("densenet121"),
          .title = QStringLiteral("DenseNet-121"),
          .description = QStringLiteral("7.0M parameters: each layer sees all earlier ones; "
                                        "fine-tunes well, but slow and memory-hungry to train"),
          .headPrefix = QStringLiteral("classifier."),
          .pythonConstructor = QStringLiteral("torchvision.models.densenet121(num_classes={N})"),
          .parameters10 = 6'964'106,
          .outputStride = 32},
         [](int64_t numClasses) -> std::shared_ptr<Net> {
             return std::make_shared<DenseNet>(numClasses);
         }},
    };
    return models;
}

} // namespace ifs::tm
