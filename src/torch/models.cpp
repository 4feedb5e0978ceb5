#include "training/models.h"

#include "checkpoint/checkpointwriter.h"
#include "torch/torchmodels.h"

#include <QStringList>

#include <algorithm>
#include <cmath>

namespace ifs {

namespace nn = torch::nn;

namespace {

// ------------------------------------------------------------------------------------------------
// Building blocks, named as torchvision 0.14 names them.

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
                int64_t groups = 1)
{
    return nn::Conv2d(nn::Conv2dOptions(in, out, kernel)
                          .stride(stride)
                          .padding(padding)
                          .groups(groups)
                          .bias(false));
}

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
struct ResNet : tm::Net
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

    torch::Tensor forward(torch::Tensor x) override
    {
        x = bn1(conv1(x)).relu_();
        x = torch::max_pool2d(x, 3, 2, 1);
        x = layer4->forward(layer3->forward(layer2->forward(layer1->forward(x))));
        x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
        return fc(x);
    }
};

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
        layers->push_back(ifs::conv(hidden, oup, 1));
        layers->push_back(nn::BatchNorm2d(oup));
        conv = register_module("conv", layers);
    }

    torch::Tensor forward(torch::Tensor x)
    {
        return useResidual ? x + conv->forward(x) : conv->forward(x);
    }
};

/// torchvision.models.MobileNetV2 (width 1.0)
struct MobileNetV2 : tm::Net
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

    torch::Tensor forward(torch::Tensor x) override
    {
        x = features->forward(x);
        x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
        return classifier->forward(x);
    }
};

/// Our small CNN for quick runs on small images (Fashion-MNIST, CIFAR). smallCnnPythonSource()
/// is the same network in Python; PyTorch's default initialisation on both sides.
struct SmallCnn : tm::Net
{
    nn::Sequential features{nullptr};
    nn::Sequential classifier{nullptr};

    explicit SmallCnn(int64_t numClasses)
    {
        features = register_module(
            "features",
            nn::Sequential(conv(3, 32, 3, 1, 1), nn::BatchNorm2d(32), nn::ReLU(true),
                           nn::MaxPool2d(2), // 0-3
                           conv(32, 64, 3, 1, 1), nn::BatchNorm2d(64), nn::ReLU(true),
                           nn::MaxPool2d(2), // 4-7
                           conv(64, 128, 3, 1, 1), nn::BatchNorm2d(128), nn::ReLU(true), // 8-10
                           nn::AdaptiveAvgPool2d(4), nn::Flatten())); // 11-12
        classifier = register_module(
            "classifier", nn::Sequential(nn::Dropout(0.2), nn::Linear(128 * 4 * 4, numClasses)));
    }

    torch::Tensor forward(torch::Tensor x) override
    {
        return classifier->forward(features->forward(x));
    }
};

QString joinedNames()
{
    QStringList names;
    for (const ModelArch &arch : modelArchitectures())
        names.append(arch.name);
    return names.join(QStringLiteral(", "));
}

} // namespace

// ------------------------------------------------------------------------------------------------

const QList<ModelArch> &modelArchitectures()
{
    static const QList<ModelArch> archs = {
        {QStringLiteral("small_cnn"), QStringLiteral("Small CNN"),
         QStringLiteral("3 conv layers, 114k parameters: minutes on a CPU for 28–64 px images "
                        "(Fashion-MNIST, CIFAR)"),
         QStringLiteral("classifier.1."), QStringLiteral("SmallCNN(num_classes={N})"), 113'962, 4},
        {QStringLiteral("resnet18"), QStringLiteral("ResNet-18"),
         QStringLiteral("11.2M parameters: the usual baseline; fine-tunes well from ImageNet "
                        "weights"),
         QStringLiteral("fc."), QStringLiteral("torchvision.models.resnet18(num_classes={N})"),
         11'181'642, 32},
        {QStringLiteral("resnet34"), QStringLiteral("ResNet-34"),
         QStringLiteral("21.3M parameters: deeper ResNet, about twice ResNet-18's compute"),
         QStringLiteral("fc."), QStringLiteral("torchvision.models.resnet34(num_classes={N})"),
         21'289'802, 32},
        {QStringLiteral("resnet50"), QStringLiteral("ResNet-50"),
         QStringLiteral("23.5M parameters, bottleneck blocks: best accuracy here, needs a GPU"),
         QStringLiteral("fc."), QStringLiteral("torchvision.models.resnet50(num_classes={N})"),
         23'528'522, 32},
        {QStringLiteral("mobilenet_v2"), QStringLiteral("MobileNetV2"),
         QStringLiteral("2.2M parameters: light and fast at inference, for deployment"),
         QStringLiteral("classifier.1."),
         QStringLiteral("torchvision.models.mobilenet_v2(num_classes={N})"), 2'236'682, 32},
    };
    return archs;
}

const ModelArch *findModelArch(const QString &name)
{
    for (const ModelArch &arch : modelArchitectures()) {
        if (arch.name == name)
            return &arch;
    }
    return nullptr;
}

QString inputSizeNote(const ModelArch &arch, QSize input)
{
    const int side = std::min(input.width(), input.height());
    if (side <= 0 || side > arch.outputStride)
        return {};
    const int last = (side + arch.outputStride - 1) / arch.outputStride;
    return QStringLiteral("%1 makes its input %2 times smaller: on %3×%4 images its last stage "
                          "works on %5×%5 maps, which costs accuracy. Upscaling helps: put "
                          "transforms.Resize(%6) first in both pipelines, for about twice the time "
                          "per epoch (the README's Fashion-MNIST runs measure it).")
        .arg(arch.name)
        .arg(arch.outputStride)
        .arg(input.width())
        .arg(input.height())
        .arg(last)
        .arg(2 * side);
}

QString unknownModelMessage(const QString &name)
{
    return QStringLiteral("unknown model “%1”: choose one of %2").arg(name, joinedNames());
}

Result<ckpt::TargetSpec> modelTarget(const QString &arch, int numClasses)
{
    auto net = tm::createNet(arch, numClasses);
    if (!net)
        return net.error();
    ckpt::TargetSpec spec;
    for (const auto &[name, tensor] : tm::stateDictEntries(*net.value())) {
        ckpt::KeySpec key;
        key.key = QString::fromStdString(name);
        for (int64_t s : tensor.sizes())
            key.shape.append(s);
        key.dtype
            = tensor.scalar_type() == torch::kLong ? ckpt::DType::Int64 : ckpt::DType::Float32;
        spec.append(key);
    }
    return spec;
}

Status exportInitialWeights(const QString &arch, int numClasses, uint64_t seed, const QString &path)
{
    torch::manual_seed(seed);
    auto net = tm::createNet(arch, numClasses);
    if (!net)
        return net.error();
    return ckpt::writeCheckpoint(path, tm::stateDictValue(*net.value()));
}

int headClassCount(const ckpt::Value &stateDict, const QString &arch)
{
    const ModelArch *info = findModelArch(arch);
    if (!info)
        return -1;
    const ckpt::Value *weight = stateDict.find(QString(info->headPrefix + u"weight"));
    if (!weight || !weight->isTensor() || weight->toTensor().dim() != 2)
        return -1;
    return int(weight->toTensor().shape[0]);
}

QString smallCnnPythonSource()
{
    return QStringLiteral(
        "import torch.nn as nn\n"
        "\n"
        "\n"
        "class SmallCNN(nn.Module):\n"
        "    \"\"\"ImageFolder Studio's small CNN (arch 'small_cnn'), key for key.\"\"\"\n"
        "\n"
        "    def __init__(self, num_classes=10):\n"
        "        super().__init__()\n"
        "        self.features = nn.Sequential(\n"
        "            nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), "
        "nn.ReLU(inplace=True),\n"
        "            nn.MaxPool2d(2),\n"
        "            nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), "
        "nn.ReLU(inplace=True),\n"
        "            nn.MaxPool2d(2),\n"
        "            nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), "
        "nn.ReLU(inplace=True),\n"
        "            nn.AdaptiveAvgPool2d(4), nn.Flatten(),\n"
        "        )\n"
        "        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(128 * 4 * 4, "
        "num_classes))\n"
        "\n"
        "    def forward(self, x):\n"
        "        return self.classifier(self.features(x))\n");
}

QString modelPythonSnippet(const QString &arch, int numClasses, const QString &checkpointPath)
{
    const ModelArch *info = findModelArch(arch);
    QString constructor = info ? info->pythonConstructor : QStringLiteral("MyModel()");
    constructor.replace(QStringLiteral("{N}"), QString::number(numClasses));
    QString source = QStringLiteral("import torch\nimport torchvision\n");
    if (arch == u"small_cnn")
        source += smallCnnPythonSource();
    QString escaped = checkpointPath;
    escaped.replace(u'\\', QStringLiteral("\\\\")).replace(u'\'', QStringLiteral("\\'"));
    source
        += QStringLiteral(
               "\nmodel = %1\n"
               "# weights_only=True reads the floats of the optimizer state from PyTorch 2.0 on\n"
               "ck = torch.load('%2', map_location='cpu',\n"
               "                weights_only=int(torch.__version__.split('.')[0]) >= 2)\n"
               "model.load_state_dict(ck['model_state_dict'])\n"
               "model.eval()\n")
               .arg(constructor, escaped);
    return source;
}

// ------------------------------------------------------------------------------------------------

namespace tm {

Result<std::shared_ptr<Net>> createNet(const QString &arch, int numClasses)
{
    if (numClasses < 1)
        return Error{
            QStringLiteral("a classifier needs at least one class, not %1").arg(numClasses)};
    if (arch == u"small_cnn")
        return std::shared_ptr<Net>(std::make_shared<SmallCnn>(numClasses));
    if (arch == u"resnet18")
        return std::shared_ptr<Net>(
            std::make_shared<ResNet<BasicBlock>>(std::array{2, 2, 2, 2}, numClasses));
    if (arch == u"resnet34")
        return std::shared_ptr<Net>(
            std::make_shared<ResNet<BasicBlock>>(std::array{3, 4, 6, 3}, numClasses));
    if (arch == u"resnet50")
        return std::shared_ptr<Net>(
            std::make_shared<ResNet<Bottleneck>>(std::array{3, 4, 6, 3}, numClasses));
    if (arch == u"mobilenet_v2")
        return std::shared_ptr<Net>(std::make_shared<MobileNetV2>(numClasses));
    return Error{unknownModelMessage(arch)};
}

namespace {

/// Each module's own parameters (and buffers), depth first: the order of Python's state_dict()
/// and parameters().
std::vector<std::pair<std::string, torch::Tensor>> ownEntries(torch::nn::Module &module,
                                                              bool withBuffers)
{
    std::vector<std::pair<std::string, torch::Tensor>> entries;
    for (const auto &item : module.named_modules()) {
        const std::string prefix = item.key().empty() ? std::string() : item.key() + '.';
        for (const auto &p : item.value()->named_parameters(/*recurse=*/false))
            entries.emplace_back(prefix + p.key(), p.value());
        if (withBuffers) {
            for (const auto &b : item.value()->named_buffers(/*recurse=*/false))
                entries.emplace_back(prefix + b.key(), b.value());
        }
    }
    return entries;
}

} // namespace

std::vector<std::pair<std::string, torch::Tensor>> stateDictEntries(torch::nn::Module &module)
{
    return ownEntries(module, true);
}

std::vector<std::pair<std::string, torch::Tensor>> parameterEntries(torch::nn::Module &module)
{
    return ownEntries(module, false);
}

ckpt::Value stateDictValue(torch::nn::Module &module)
{
    ckpt::Value::Entries entries;
    for (const auto &[name, tensor] : stateDictEntries(module))
        entries.append(
            {ckpt::Value(QString::fromStdString(name)), ckpt::Value(toCheckpointTensor(tensor))});
    ckpt::Value::Entries metadata;
    for (const auto &item : module.named_modules()) {
        const bool batchNorm = item.value()->as<nn::BatchNorm2d>() != nullptr;
        metadata.append({ckpt::Value(QString::fromStdString(item.key())),
                         ckpt::Value::dict({{ckpt::Value(QStringLiteral("version")),
                                             ckpt::Value(batchNorm ? 2 : 1)}})});
    }
    return ckpt::Value::orderedDict(
        std::move(entries),
        ckpt::Value::dict({{ckpt::Value(QStringLiteral("_metadata")),
                            ckpt::Value::orderedDict(std::move(metadata))}}));
}

namespace {

std::optional<ckpt::DType> checkpointType(torch::ScalarType type)
{
    switch (type) {
    case torch::kFloat:
        return ckpt::DType::Float32;
    case torch::kDouble:
        return ckpt::DType::Float64;
    case torch::kHalf:
        return ckpt::DType::Float16;
    case torch::kBFloat16:
        return ckpt::DType::BFloat16;
    case torch::kChar:
        return ckpt::DType::Int8;
    case torch::kShort:
        return ckpt::DType::Int16;
    case torch::kInt:
        return ckpt::DType::Int32;
    case torch::kLong:
        return ckpt::DType::Int64;
    case torch::kByte:
        return ckpt::DType::UInt8;
    case torch::kBool:
        return ckpt::DType::Bool;
    default:
        return std::nullopt;
    }
}

std::optional<torch::ScalarType> torchType(ckpt::DType type)
{
    switch (type) {
    case ckpt::DType::Float32:
        return torch::kFloat;
    case ckpt::DType::Float64:
        return torch::kDouble;
    case ckpt::DType::Float16:
        return torch::kHalf;
    case ckpt::DType::BFloat16:
        return torch::kBFloat16;
    case ckpt::DType::Int8:
        return torch::kChar;
    case ckpt::DType::Int16:
        return torch::kShort;
    case ckpt::DType::Int32:
        return torch::kInt;
    case ckpt::DType::Int64:
        return torch::kLong;
    case ckpt::DType::UInt8:
        return torch::kByte;
    case ckpt::DType::Bool:
        return torch::kBool;
    default:
        return std::nullopt;
    }
}

} // namespace

ckpt::Tensor toCheckpointTensor(const torch::Tensor &tensor)
{
    // A row-major CPU copy: what state_dict() tensors look like once saved from Python (our
    // channels_last parameters are written in the logical NCHW layout).
    const torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
    const auto type = checkpointType(cpu.scalar_type());
    Q_ASSERT(type); // models hold only the types above
    QByteArray bytes(reinterpret_cast<const char *>(cpu.data_ptr()),
                     qsizetype(cpu.numel() * cpu.element_size()));
    QList<qint64> shape;
    for (int64_t s : cpu.sizes())
        shape.append(s);
    return ckpt::Tensor::fromBytes(type.value_or(ckpt::DType::Float32), std::move(bytes), shape);
}

Result<torch::Tensor> fromCheckpointTensor(const ckpt::Tensor &tensor)
{
    const auto type = torchType(tensor.dtype());
    if (!type)
        return Error{QStringLiteral("tensors of type %1 cannot go into a model")
                         .arg(ckpt::dtypeName(tensor.dtype()))};
    auto bytes = tensor.contiguousBytes();
    if (!bytes)
        return bytes.error();
    std::vector<int64_t> sizes(tensor.shape.begin(), tensor.shape.end());
    torch::Tensor out = torch::empty(sizes, torch::TensorOptions().dtype(*type));
    if (out.numel() * out.element_size() != bytes->size())
        return Error{QStringLiteral("tensor data does not match its shape")};
    std::memcpy(out.data_ptr(), bytes->constData(), size_t(bytes->size()));
    return out;
}

QStringList copyMatching(torch::nn::Module &module, const ckpt::Value &stateDict,
                         QStringList *mismatched)
{
    torch::NoGradGuard noGrad; // a copy into parameters, not an operation to differentiate
    QStringList copied;
    for (auto &[name, target] : stateDictEntries(module)) {
        const QString key = QString::fromStdString(name);
        const ckpt::Value *value = stateDict.find(key);
        if (!value || !value->isTensor())
            continue;
        const ckpt::Tensor &source = value->toTensor();
        bool sameShape = source.dim() == target.dim();
        for (int i = 0; sameShape && i < source.dim(); ++i)
            sameShape = source.shape[i] == target.size(i);
        auto converted = sameShape ? fromCheckpointTensor(source) : Result<torch::Tensor>(Error{});
        if (!converted) {
            if (mismatched)
                mismatched->append(key);
            continue;
        }
        target.copy_(converted.value());
        copied.append(key);
    }
    return copied;
}

void setChannelsLast(torch::nn::Module &module, bool channelsLast)
{
    const auto format
        = channelsLast ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
    torch::NoGradGuard noGrad;
    for (auto &p : module.parameters()) {
        if (p.dim() == 4)
            p.set_data(p.data().contiguous(format));
    }
    for (auto &b : module.buffers()) {
        if (b.dim() == 4)
            b.set_data(b.data().contiguous(format));
    }
}

} // namespace tm
} // namespace ifs
