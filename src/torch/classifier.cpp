// Evaluation and prediction with a trained model (libtorch). See evaluation.h.

#include "training/evaluation.h"

#include "base/cpufeatures.h"
#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointrepair.h"
#include "torch/classifierimpl.h"
#include "torch/export/exportkit.h"
#include "torch/models/modelkit.h"
#include "torch/torchmodels.h"
#include "training/models.h"
#include "training/training.h"
#include "training/trainingdata.h"
#include "transforms/torchrng.h"
#include "transforms/transformspec.h"

#include <ATen/autocast_mode.h>

#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <algorithm>

namespace ifs {

namespace tm {

AutocastScope::AutocastScope(bool enabled, torch::ScalarType type, torch::DeviceType device)
    : m_enabled(enabled)
    , m_cuda(device == torch::kCUDA)
{
    if (!m_enabled)
        return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    const auto where = m_cuda ? at::kCUDA : at::kCPU;
    m_previous = at::autocast::is_autocast_enabled(where);
    m_previousType = at::autocast::get_autocast_dtype(where);
    at::autocast::set_autocast_enabled(where, true);
    at::autocast::set_autocast_dtype(where, type);
#else
    if (m_cuda) {
        m_previous = at::autocast::is_enabled();
        m_previousType = at::autocast::get_autocast_gpu_dtype();
        at::autocast::set_enabled(true);
        at::autocast::set_autocast_gpu_dtype(type);
    } else {
        m_previous = at::autocast::is_cpu_enabled();
        m_previousType = at::autocast::get_autocast_cpu_dtype();
        at::autocast::set_cpu_enabled(true);
        at::autocast::set_autocast_cpu_dtype(type);
    }
#endif
    at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope()
{
    if (!m_enabled)
        return;
    if (at::autocast::decrement_nesting() == 0)
        at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    const auto where = m_cuda ? at::kCUDA : at::kCPU;
    at::autocast::set_autocast_enabled(where, m_previous);
    at::autocast::set_autocast_dtype(where, m_previousType);
#else
    if (m_cuda) {
        at::autocast::set_enabled(m_previous);
        at::autocast::set_autocast_gpu_dtype(m_previousType);
    } else {
        at::autocast::set_cpu_enabled(m_previous);
        at::autocast::set_autocast_cpu_dtype(m_previousType);
    }
#endif
}

bool isHeadName(const std::string &name, const QString &headPrefix)
{
    const QString dotted = QString::fromStdString(name) + QLatin1Char('.');
    return !headPrefix.isEmpty() && dotted.startsWith(headPrefix);
}

void setFrozenBackboneEval(torch::nn::Module &net, const QString &headPrefix)
{
    for (const auto &item : net.named_modules()) {
        if (isHeadName(item.key(), headPrefix))
            continue;
        if (item.value()->as<torch::nn::BatchNorm2d>() || item.value()->as<torch::nn::BatchNorm1d>()
            || item.value()->as<StochasticDepth>())
            item.value()->eval();
    }
}

torch::Tensor batchToDevice(const Batch &batch, const torch::Device &device, bool channelsLast)
{
    const auto format
        = channelsLast ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
    const torch::Tensor cpu
        = torch::from_blob(const_cast<float *>(batch.data.data()),
                           {batch.count, batch.channels, batch.height, batch.width}, torch::kFloat);
    if (device.is_cuda())
        return cpu.pin_memory().to(device, /*non_blocking=*/true).contiguous(format);
    // A copy either way: the batch's buffer goes back to the loader.
    return channelsLast ? cpu.contiguous(format) : cpu.clone();
}

torch::Tensor batchLabels(const Batch &batch, const torch::Device &device)
{
    const torch::Tensor cpu
        = torch::from_blob(const_cast<int64_t *>(batch.labels.data()), {batch.count}, torch::kLong)
              .clone();
    return device.is_cuda() ? cpu.to(device, /*non_blocking=*/true) : cpu;
}

void appendPredictions(Evaluation &evaluation, const torch::Tensor &logits,
                       const torch::Tensor &labels, const std::vector<int> &sampleIndices,
                       const std::vector<LoaderSample> &samples)
{
    const torch::Tensor logProbs = torch::log_softmax(logits.to(torch::kCPU, torch::kFloat), 1);
    const torch::Tensor cpuLabels = labels.to(torch::kCPU).contiguous();
    const torch::Tensor losses = -logProbs.gather(1, cpuLabels.unsqueeze(1)).squeeze(1);
    const torch::Tensor probs = logProbs.exp();
    const auto [confidence, predicted] = probs.max(1);
    const torch::Tensor labelProbs = probs.gather(1, cpuLabels.unsqueeze(1)).squeeze(1);
    const auto conf = confidence.contiguous();
    const auto pred = predicted.contiguous();
    const auto loss = losses.contiguous();
    const auto labelP = labelProbs.contiguous();
    for (size_t i = 0; i < sampleIndices.size(); ++i) {
        SamplePrediction p;
        p.sampleIndex = sampleIndices[i];
        p.path = samples[size_t(p.sampleIndex)].path;
        p.label = int(cpuLabels.data_ptr<int64_t>()[i]);
        p.predicted = int(pred.data_ptr<int64_t>()[i]);
        p.confidence = conf.data_ptr<float>()[i];
        p.labelProbability = labelP.data_ptr<float>()[i];
        p.loss = loss.data_ptr<float>()[i];
        evaluation.predictions.append(p);
    }
}

Result<Evaluation> evaluateNet(Net &net, BatchLoader &loader,
                               const std::vector<LoaderSample> &samples, const QStringList &classes,
                               const torch::Device &device, bool channelsLast,
                               std::optional<torch::ScalarType> amp,
                               const std::function<bool()> &cancelled,
                               const std::function<void(qint64, qint64)> &progress)
{
    Evaluation evaluation;
    evaluation.classes = classes;
    evaluation.predictions.reserve(qsizetype(samples.size()));
    const bool wasTraining = net.is_training();
    net.eval();
    torch::NoGradGuard noGrad;
    loader.startEpoch(0);
    qint64 done = 0;
    const qint64 total = qint64(samples.size());
    while (std::optional<Batch> batch = loader.next()) {
        if (cancelled && cancelled())
            break;
        if (batch->count == 0)
            continue;
        const torch::Tensor input = batchToDevice(*batch, device, channelsLast);
        torch::Tensor logits;
        {
            AutocastScope autocast(amp.has_value(), amp.value_or(torch::kBFloat16), device.type());
            logits = net.forward(input);
        }
        appendPredictions(evaluation, logits, batchLabels(*batch, torch::kCPU),
                          batch->sampleIndices, samples);
        done += batch->count;
        loader.recycle(std::move(*batch));
        if (progress)
            progress(done, total);
    }
    if (wasTraining)
        net.train();
    if (cancelled && cancelled())
        return Error{QStringLiteral("cancelled"), ErrorCode::Cancelled};
    evaluation.failures = loader.failures();
    evaluation.computeSummary();
    return evaluation;
}

} // namespace tm

// ------------------------------------------------------------------------------------------------

Classifier::Classifier()
    : d(std::make_unique<Impl>())
{ }
Classifier::Classifier(Classifier &&) noexcept = default;
Classifier &Classifier::operator=(Classifier &&) noexcept = default;
Classifier::~Classifier() = default;

QString Classifier::arch() const
{
    return d->arch;
}
QStringList Classifier::classes() const
{
    return d->classes;
}
QString Classifier::device() const
{
    return d->deviceName;
}
QString Classifier::valTransforms() const
{
    return d->valSource;
}
QStringList Classifier::notes() const
{
    return d->notes;
}

Result<tm::LoadedNet> tm::loadCheckpointNet(const QString &checkpointPath,
                                            const ClassifierOptions &options)
{
    auto file = ckpt::readCheckpoint(checkpointPath);
    if (!file)
        return file.error();
    const ckpt::Value &root = file->root;
    LoadedNet c;
    c.notes = file->notes;
    const QString name = QFileInfo(checkpointPath).fileName();

    // Architecture and classes: ours say them; a bare state dict needs options.arch.
    c.arch = root.isDict() ? root.value(u"arch").toString() : QString();
    if (c.arch.isEmpty())
        c.arch = options.arch;
    if (c.arch.isEmpty())
        return Error{QStringLiteral("“%1” does not say which model it holds: give the "
                                    "architecture (--model resnet18, …)")
                         .arg(name)};
    if (!findModelArch(c.arch))
        return Error{unknownModelMessage(c.arch)};
    auto dict = ckpt::extractStateDict(root);
    if (!dict)
        return Error{
            QStringLiteral("“%1” holds no model weights: %2").arg(name, dict.errorMessage())};

    const ckpt::Value classToIdx = root.isDict() ? root.value(u"class_to_idx") : ckpt::Value();
    if (const std::optional<QStringList> classes = classesFromClassToIdx(classToIdx)) {
        c.classes = *classes;
    } else if (!options.classes.isEmpty()) {
        c.classes = options.classes;
    }
    int numClasses = int(root.isDict() ? root.value(u"num_classes").toInt() : 0);
    if (numClasses <= 0)
        numClasses = headClassCount(dict->tensors, c.arch);
    if (numClasses <= 0)
        numClasses = int(c.classes.size());
    if (numClasses <= 0)
        return Error{QStringLiteral("cannot tell how many classes “%1” predicts").arg(name)};
    if (c.classes.isEmpty()) {
        for (int i = 0; i < numClasses; ++i)
            c.classes.append(QString::number(i));
        c.notes.append(QStringLiteral("No class names in the checkpoint: classes are numbered"));
    }
    if (c.classes.size() != numClasses)
        return Error{QStringLiteral("“%1” has %2 outputs but %3 class names")
                         .arg(name)
                         .arg(numClasses)
                         .arg(c.classes.size())};

    auto net = tm::createNet(c.arch, numClasses);
    if (!net)
        return net.error();
    c.net = net.value();
    // Repair prefixes (module., model., _orig_mod.) when the keys do not match as they are.
    auto target = modelTarget(c.arch, numClasses);
    if (!target)
        return target.error();
    auto fitted = ckpt::fitStateDict(dict->tensors, target.value());
    if (!fitted)
        return Error{
            QStringLiteral("“%1” holds no model weights: %2").arg(name, fitted.errorMessage())};
    const ckpt::Value &weights = fitted->stateDict;
    if (!fitted->proposal.operations.isEmpty())
        c.notes.append(fitted->proposal.summary);
    // BatchNorm fills missing num_batches_tracked itself: loadsStrictly() allows for that.
    if (const ckpt::LoadReport &report = fitted->proposal.after; !report.loadsStrictly())
        return Error{QStringLiteral("the weights in “%1” do not fit a %2 with %3 classes: %4")
                         .arg(name, c.arch)
                         .arg(numClasses)
                         .arg(report.summary)};
    tm::copyMatching(*c.net, weights);
    c.net->eval();

    const ckpt::Value transforms = root.isDict() ? root.value(u"transforms") : ckpt::Value();
    c.valSource = transforms.value(u"val").toString();
    if (c.valSource.isEmpty())
        c.valSource = options.valTransforms;
    if (c.valSource.isEmpty())
        return Error{QStringLiteral("“%1” does not store its validation transforms: give them "
                                    "(--val-transforms \"transforms.Compose([...])\")")
                         .arg(name)};
    c.dataRoot = root.isDict() ? root.value(u"config").value(u"data").toString() : QString();
    return c;
}

Result<Classifier> Classifier::load(const QString &checkpointPath, const ClassifierOptions &options)
{
    try {
        auto loaded = tm::loadCheckpointNet(checkpointPath, options);
        if (!loaded)
            return loaded.error();
        Classifier c;
        c.d->net = loaded->net;
        c.d->arch = loaded->arch;
        c.d->classes = loaded->classes;
        c.d->notes = loaded->notes;
        c.d->valSource = loaded->valSource;

        auto device = resolveDevice(options.device);
        if (!device)
            return device.error();
        c.d->deviceName = device->first;
        c.d->device = torch::Device(device->first.toStdString());
        c.d->net->to(c.d->device);
        tm::setChannelsLast(*c.d->net, true);
        const AmpChoice amp
            = resolveAmp(options.amp, c.d->arch, c.d->device.is_cuda(), cpuHasNativeBf16());
        if (amp.mode != AmpMode::Off)
            c.d->amp = amp.mode == AmpMode::Float16 ? torch::kHalf : torch::kBFloat16;
        if (!amp.note.isEmpty())
            c.d->notes.append(amp.note);
        c.d->net->eval();

        auto pipeline = compilePipelineSource(c.d->valSource, QStringLiteral("val"));
        if (!pipeline)
            return pipeline.error();
        c.d->val = pipeline.value();
        return c;
    } catch (const c10::Error &e) {
        return Error{
            QStringLiteral("cannot load the model: %1")
                .arg(QString::fromStdString(e.what_without_backtrace()).section(u'\n', 0, 0))};
    }
}

namespace {

/// The classes of a labels.json and the torchvision source of a preprocessing.json.
Status readSidecars(const std::string &labels, const std::string &preprocessing,
                    const QString &path, QStringList &classes, QString &valSource)
{
    const QJsonObject l = QJsonDocument::fromJson(QByteArray::fromStdString(labels)).object();
    for (const QJsonValue &name : l.value(u"classes").toArray())
        classes.append(name.toString());
    valSource = QJsonDocument::fromJson(QByteArray::fromStdString(preprocessing))
                    .object()
                    .value(u"torchvision")
                    .toString();
    if (classes.isEmpty() || valSource.isEmpty())
        return Error{QStringLiteral("“%1” does not carry the labels and preprocessing of an "
                                    "ImageFolder Studio export")
                         .arg(path)};
    return success();
}

} // namespace

Result<Classifier> Classifier::loadExported(const QString &modelPath,
                                            const ClassifierOptions &options)
{
    Q_UNUSED(options);
    Classifier c;
    c.d->arch = QFileInfo(modelPath).fileName();
    c.d->deviceName = QStringLiteral("cpu");
    std::string labels, preprocessing;
    if (modelPath.endsWith(u".onnx", Qt::CaseInsensitive)) {
        auto metadata = tm::onnxMetadata(modelPath);
        if (!metadata)
            return metadata.error();
        std::map<std::string, std::string> &props = metadata.value();
        labels = props["classes"];
        preprocessing = props["preprocessing"];
        const QString arch = QString::fromStdString(props["arch"]);
        auto forward = tm::openOnnxOpenCv(modelPath, tm::onnxNeedsBatchOne(arch));
        if (!forward)
            return forward.error();
        c.d->exported = forward.value();
        c.d->notes.append(QStringLiteral("ONNX model of %1, run with OpenCV").arg(arch));
    } else {
        tm::ExtraFiles extra{{"labels.json", ""}, {"preprocessing.json", ""}};
        auto module = tm::loadTorchScript(modelPath, &extra);
        if (!module)
            return module.error();
        labels = extra["labels.json"];
        preprocessing = extra["preprocessing.json"];
        auto shared = std::make_shared<torch::jit::Module>(module.value());
        c.d->exported = [shared](const torch::Tensor &x) -> Result<torch::Tensor> {
            return shared->forward({x}).toTensor();
        };
    }
    if (Status ok = readSidecars(labels, preprocessing, modelPath, c.d->classes, c.d->valSource);
        !ok)
        return ok.error();
    auto pipeline = compilePipelineSource(c.d->valSource, QStringLiteral("val"));
    if (!pipeline)
        return pipeline.error();
    c.d->val = pipeline.value();
    return c;
}

Result<Evaluation> Classifier::evaluate(const std::vector<LoaderSample> &samples, int batchSize,
                                        int workers,
                                        const std::function<void(qint64, qint64)> &progress,
                                        const std::atomic_bool *cancel)
{
    if (samples.empty())
        return Error{QStringLiteral("no images to evaluate")};
    if (d->exported)
        return Error{QStringLiteral("an exported model only predicts: evaluate its checkpoint")};
    try {
        BatchLoaderOptions options;
        options.batchSize = std::max(1, batchSize);
        options.workers = workers;
        options.shuffle = false;
        BatchLoader loader(samples, d->val, options);
        if (Status ok = loader.status(); !ok)
            return Error{QStringLiteral("the images cannot be batched: ") + ok.errorMessage()};
        return tm::evaluateNet(
            *d->net, loader, samples, d->classes, d->device, true, d->amp,
            [cancel] { return cancel && cancel->load(); }, progress);
    } catch (const c10::Error &e) {
        return Error{
            QStringLiteral("evaluation failed: %1")
                .arg(QString::fromStdString(e.what_without_backtrace()).section(u'\n', 0, 0))};
    }
}

Result<QList<ImagePrediction>> Classifier::predict(const QStringList &imagePaths, int topk)
{
    QList<ImagePrediction> out;
    out.reserve(imagePaths.size());
    const int k = std::clamp(topk, 1, int(d->classes.size()));
    constexpr int kBatch = 32;
    try {
        torch::NoGradGuard noGrad;
        // Images are transformed one by one and run in batches of equal shapes.
        Batch batch;
        std::vector<int> members; // indices into `out`
        auto flush = [&] {
            if (members.empty())
                return;
            batch.count = int(members.size());
            torch::Tensor logits;
            if (d->exported) {
                auto exported = d->exported(tm::batchToDevice(batch, torch::kCPU, false));
                if (!exported)
                    throw std::runtime_error(exported.errorMessage().toStdString());
                logits = exported.value();
            } else {
                tm::AutocastScope autocast(d->amp.has_value(), d->amp.value_or(torch::kBFloat16),
                                           d->device.type());
                logits = d->net->forward(tm::batchToDevice(batch, d->device, true));
            }
            logits = logits.to(torch::kCPU, torch::kFloat);
            const auto [values, indices] = torch::softmax(logits, 1).topk(k, 1);
            for (int row = 0; row < batch.count; ++row) {
                ImagePrediction &prediction = out[members[size_t(row)]];
                for (int i = 0; i < k; ++i)
                    prediction.top.append(
                        {int(indices[row][i].item<int64_t>()), values[row][i].item<float>()});
            }
            members.clear();
            batch.data.clear();
        };
        for (const QString &path : imagePaths) {
            out.append(ImagePrediction{path, {}, {}});
            auto image = loadTransformInput(path);
            if (!image) {
                out.last().error = image.errorMessage();
                continue;
            }
            TorchGenerator rng(0);
            auto run = d->val.run(image.value(), rng);
            if (!run || !run->output.isTensor()) {
                out.last().error = run
                    ? QStringLiteral("the val transforms do not end in a tensor (add ToTensor)")
                    : run.errorMessage();
                continue;
            }
            const ImageTensor &t = run->output.tensor;
            if (!members.empty()
                && (t.channels != batch.channels || t.height != batch.height
                    || t.width != batch.width))
                flush();
            batch.channels = t.channels;
            batch.height = t.height;
            batch.width = t.width;
            batch.data.insert(batch.data.end(), t.data.begin(), t.data.end());
            members.push_back(int(out.size() - 1));
            if (int(members.size()) == kBatch)
                flush();
        }
        flush();
    } catch (const c10::Error &e) {
        return Error{
            QStringLiteral("prediction failed: %1")
                .arg(QString::fromStdString(e.what_without_backtrace()).section(u'\n', 0, 0))};
    } catch (const std::runtime_error &e) {
        return Error{QStringLiteral("prediction failed: %1").arg(QString::fromUtf8(e.what()))};
    }
    return out;
}

} // namespace ifs
