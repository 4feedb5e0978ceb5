// torchvision's ResNets (resnet18, resnet34, resnet50), module for module.
#include "torch/models/modelfamilies.h"

#include <array>

namespace ifs::tm {

namespace {

namespace nn = torch::nn;

/// torchvision.models.resnet.BasicBlock
struct BasicBlock : nn::Module
{
    static constexpr int64_t expansion = 1;
    nn::Conv2d conv1{nullptr}, conv2{nullptr};
    nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
    nn::Sequential downsample{nullptr};

    BasicBlock(int64_t inplanes, int64_t planes, int64_t stride, nn::Sequential down)
    {
        conv1 = register_module("conv1", conv(inplanes, planes, 3, stride, 1));
        bn1 = register_module("bn1", nn::BatchNorm2d(planes));
        conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1));
        bn2 = register_module("bn2", nn::BatchNorm2d(planes));
        if (down)
            downsample = register_module("downsample", down);
    }

    torch::Tensor forward(torch::Tensor x)
    {
        torch::Tensor identity = downsample ? downsample->forward(x) : x;
        torch::Tensor out = bn1(conv1(x)).relu_();
        out = bn2(conv2(out));
        return (out += identity).relu_();
    }
};

/// torchvision.models.resnet.Bottleneck (stride on the 3×3 convolution, "ResNet v1.5")
struct Bottleneck : nn::Module
{
    static constexpr int64_t expansion = 4;
    nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
    nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
    nn::Sequential downsample{nullptr};

    Bottleneck(int64_t inplanes, int64_t planes, int64_t stride, nn::Sequential down)
    {
        const int64_t width = planes;
        conv1 = register_module("conv1", conv(inplanes, width, 1));
        bn1 = register_module("bn1", nn::BatchNorm2d(width));
        conv2 = register_module("conv2", conv(width, width, 3, stride, 1));
        bn2 = register_module("bn2", nn::BatchNorm2d(width));
        conv3 = register_module("conv3", conv(width, planes * expansion, 1));
        bn3 = register_module("bn3", nn::BatchNorm2d(planes * expansion));
        if (down)
            downsample = register_module("downsample", down);
    }

    torch::Tensor forward(torch::Tensor x)
    {
        torch::Tensor identity = downsample ? downsample->forward(x) : x;
        torch::Tensor out = bn1(conv1(x)).relu_();
        out = bn2(conv2(out)).relu_();
        out = bn3(conv3(out));
        return (out += identity).relu_();
    }
};

/// torchvision.models.ResNet
template<typename Block>
struct ResNet : Net
{
    int64_t inplanes = 64;
    nn::Conv2d conv1{nullptr};
    nn::BatchNorm2d bn1{nullptr};
    nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
    nn::Linear fc{nullptr};

    ResNet(const std::array<int, 4> &layers, int64_t numClasses)
    {
        conv1 = register_module("conv1", conv(3, 64, 7, 2, 3));
        bn1 = register_module("bn1", nn::BatchNorm2d(64));
        layer1 = register_module("layer1", makeLayer(64, layers[0], 1));
        layer2 = register_module("layer2", makeLayer(128, layers[1], 2));
        layer3 = register_module("layer3", makeLayer(256, layers[2], 2));
        layer4 = register_module("layer4", makeLayer(512, layers[3], 2));
        fc = register_module("fc", nn::Linear(512 * Block::expansion, numClasses));

        // As torchvision's ResNet.__init__: Kaiming-normal convolutions (fan_out, relu), BatchNorm
        // weight 1 and bias 0; the Linear keeps PyTorch's default initialisation.
        torch::NoGradGuard noGrad;
        for (const auto &module : modules(/*include_self=*/false)) {
            if (auto *c = module->as<nn::Conv2d>())
                nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
            else if (auto *b = module->as<nn::BatchNorm2d>()) {
                nn::init::ones_(b->weight);
                nn::init::zeros_(b->bias);
            }
        }
    }

    nn::Sequential makeLayer(int64_t planes, int blocks, int64_t stride)
    {
        nn::Sequential down{nullptr};
        if (stride != 1 || inplanes != planes * Block::expansion) {
            down = nn::Sequential(conv(inplanes, planes * Block::expansion, 1, stride),
                                  nn::BatchNorm2d(planes * Block::expansion));
        }
        nn::Sequential layer;
        layer->push_back(std::make_shared<Block>(inplanes, planes, stride, down));
        inplanes = planes * Block::expansion;
        for (int i = 1; i < blocks; ++i)
            layer->push_back(std::make_shared<Block>(inplanes, planes, 1, nn::Sequential{nullptr}));
        return layer;
    }

    torch::Tensor camForward(torch::Tensor x) override
    {
        x = bn1(conv1(x)).relu_();
        x = torch::max_pool2d(x, 3, 2, 1);
        return layer4->forward(layer3->forward(layer2->forward(layer1->forward(x))));
    }

    torch::Tensor poolForward(torch::Tensor x) override
    {
        return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    }

    torch::Tensor headForward(torch::Tensor x) override { return fc(x); }
};

template<typename Block>
ModelDefinition resnet(ModelArch arch, std::array<int, 4> layers)
{
    return {std::move(arch), [layers](int64_t numClasses) -> std::shared_ptr<Net> {
                return std::make_shared<ResNet<Block>>(layers, numClasses);
            }};
}

} // namespace

const QList<ModelDefinition> &resnetModels()
{
    static const QList<ModelDefinition> models = {
        resnet<BasicBlock>(
            {.name = QStringLiteral("resnet18"),
             .title = QStringLiteral("ResNet-18"),
             .description = QStringLiteral("11.2M parameters: the usual baseline; fine-tunes well "
                                           "from ImageNet weights"),
             .headPrefix = QStringLiteral("fc."),
             .pythonConstructor = QStringLiteral("torchvision.models.resnet18(num_classes={N})"),
             .parameters10 = 11'181'642,
             .outputStride = 32},
            {2, 2, 2, 2}),
        resnet<BasicBlock>(
            {.name = QStringLiteral("resnet34"),
             .title = QStringLiteral("ResNet-34"),
             .description = QStringLiteral("21.3M parameters: deeper ResNet, about twice "
                                           "ResNet-18's compute"),
             .headPrefix = QStringLiteral("fc."),
             .pythonConstructor = QStringLiteral("torchvision.models.resnet34(num_classes={N})"),
             .parameters10 = 21'289'802,
             .outputStride = 32},
            {3, 4, 6, 3}),
        resnet<Bottleneck>(
            {.name = QStringLiteral("resnet50"),
             .title = QStringLiteral("ResNet-50"),
             .description = QStringLiteral("23.5M parameters, bottleneck blocks: best accuracy "
                                           "here, needs a GPU"),
             .headPrefix = QStringLiteral("fc."),
             .pythonConstructor = QStringLiteral("torchvision.models.resnet50(num_classes={N})"),
             .parameters10 = 23'528'522,
             .outputStride = 32},
            {3, 4, 6, 3}),
    };
    return models;
}

} // namespace ifs::tm
