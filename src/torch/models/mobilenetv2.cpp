// torchvision's MobileNetV2 (width 1.0), module for module.
#include "torch/models/modelfamilies.h"

#include <cmath>

namespace ifs::tm {

namespace {

namespace nn = torch::nn;

/// An nn::Sequential that can sit inside another (its forward is not a template).
struct SeqImpl : nn::SequentialImpl
{
    using SequentialImpl::SequentialImpl;
    torch::Tensor forward(torch::Tensor x) { return SequentialImpl::forward(std::move(x)); }
};
TORCH_MODULE(Seq);

/// torchvision.ops.Conv2dNormActivation with ReLU6: Sequential(conv, bn, relu6).
Seq convBnRelu6(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t groups = 1)
{
    return Seq(conv(in, out, kernel, stride, (kernel - 1) / 2, groups), nn::BatchNorm2d(out),
               nn::ReLU6(nn::ReLU6Options().inplace(true)));
}

/// torchvision.models.mobilenetv2.InvertedResidual
struct InvertedResidual : nn::Module
{
    nn::Sequential conv{nullptr};
    bool useResidual = false;

    InvertedResidual(int64_t inp, int64_t oup, int64_t stride, int64_t expandRatio)
    {
        const auto hidden = int64_t(std::lround(double(inp) * double(expandRatio)));
        useResidual = stride == 1 && inp == oup;
        nn::Sequential layers;
        if (expandRatio != 1)
            layers->push_back(convBnRelu6(inp, hidden, 1));
        layers->push_back(convBnRelu6(hidden, hidden, 3, stride, hidden));
        layers->push_back(tm::conv(hidden, oup, 1));
        layers->push_back(nn::BatchNorm2d(oup));
        conv = register_module("conv", layers);
    }

    torch::Tensor forward(torch::Tensor x)
    {
        return useResidual ? x + conv->forward(x) : conv->forward(x);
    }
};

/// torchvision.models.MobileNetV2 (width 1.0)
struct MobileNetV2 : Net
{
    nn::Sequential features{nullptr};
    nn::Sequential classifier{nullptr};

    explicit MobileNetV2(int64_t numClasses)
    {
        static constexpr int settings[][4]
            = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
               {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
        nn::Sequential f;
        int64_t input = 32;
        f->push_back(convBnRelu6(3, input, 3, 2));
        for (const auto &[t, c, n, s] : settings) {
            for (int i = 0; i < n; ++i) {
                f->push_back(std::make_shared<InvertedResidual>(input, c, i == 0 ? s : 1, t));
                input = c;
            }
        }
        f->push_back(convBnRelu6(input, 1280, 1));
        features = register_module("features", f);
        classifier = register_module(
            "classifier", nn::Sequential(nn::Dropout(0.2), nn::Linear(1280, numClasses)));

        // As torchvision: Kaiming-normal (fan_out) convolutions, BatchNorm 1/0, Linear N(0, 0.01)
        // with zero bias.
        torch::NoGradGuard noGrad;
        for (const auto &module : modules(false)) {
            if (auto *c = module->as<nn::Conv2d>()) {
                nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut);
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

} // namespace

const QList<ModelDefinition> &mobileNetV2Models()
{
    static const QList<ModelDefinition> models = {
        {{.name = QStringLiteral("mobilenet_v2"),
          .title = QStringLiteral("MobileNetV2"),
          .description
          = QStringLiteral("2.2M parameters: light and fast at inference, for deployment"),
          .headPrefix = QStringLiteral("classifier.1."),
          .pythonConstructor = QStringLiteral("torchvision.models.mobilenet_v2(num_classes={N})"),
          .parameters10 = 2'236'682,
          .outputStride = 32},
         [](int64_t numClasses) -> std::shared_ptr<Net> {
             return std::make_shared<MobileNetV2>(numClasses);
         }},
    };
    return models;
}

} // namespace ifs::tm
