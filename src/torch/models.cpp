#include "training/models.h"

#include "checkpoint/checkpointwriter.h"
#include "torch/models/modelfamilies.h"
#include "torch/torchmodels.h"

#include <QStringList>

#include <algorithm>
#include <cmath>

namespace ifs {

namespace nn = torch::nn;

namespace {

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
    static const QList<ModelArch> archs = [] {
        QList<ModelArch> all;
        for (const tm::ModelDefinition *definition : tm::modelDefinitions())
            all.append(definition->arch);
        return all;
    }();
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

QString modelPythonSnippet(const QString &arch, int numClasses, const QString &checkpointPath)
{
    const ModelArch *info = findModelArch(arch);
    QString constructor = info ? info->pythonConstructor : QStringLiteral("MyModel()");
    constructor.replace(QStringLiteral("{N}"), QString::number(numClasses));
    QString source = QStringLiteral("import torch\nimport torchvision\n");
    if (info)
        source += info->pythonDefinition;
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

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                int64_t groups)
{
    return nn::Conv2d(nn::Conv2dOptions(in, out, kernel)
                          .stride(stride)
                          .padding(padding)
                          .groups(groups)
                          .bias(false));
}

const QList<const ModelDefinition *> &modelDefinitions()
{
    static const QList<const ModelDefinition *> definitions = [] {
        QList<const ModelDefinition *> all;
#define IFS_ADD_MODEL_FAMILY(function)                                                             \
    for (const ModelDefinition &definition : function())                                           \
        all.append(&definition);
        IFS_MODEL_FAMILIES(IFS_ADD_MODEL_FAMILY)
#undef IFS_ADD_MODEL_FAMILY
        return all;
    }();
    return definitions;
}

Result<std::shared_ptr<Net>> createNet(const QString &arch, int numClasses)
{
    if (numClasses < 1)
        return Error{
            QStringLiteral("a classifier needs at least one class, not %1").arg(numClasses)};
    for (const ModelDefinition *definition : modelDefinitions()) {
        if (definition->arch.name == arch)
            return definition->create(numClasses);
    }
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
